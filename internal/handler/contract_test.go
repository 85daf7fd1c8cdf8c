package handler

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// scenario is one row of the contract's outcome table.
type scenario struct {
	name     string
	opts     []harnessOpt
	setup    func(hs *harness)
	body     string
	timeout  time.Duration
	outcome  outcome.Outcome
	zegoCode int    // expected ZEGO code in the answer (0 = none expected or success)
	field    string // for invalid requests
	// check runs after the invocation, e.g. on the ZIM server's store.
	check func(t *testing.T, hs *harness)
}

func contractScenarios() []scenario {
	req := body("alice", "bob", 0)
	stillThere := func(t *testing.T, hs *harness) {
		if len(hs.srv.Conversations(testAppID, "alice")) != 1 {
			t.Errorf("the conversation must still exist")
		}
	}
	seedBob := func(hs *harness) { hs.seed("alice", peer("bob")) }
	return []scenario{
		{name: "deleted", setup: seedBob, body: req, outcome: outcome.Deleted, check: func(t *testing.T, hs *harness) {
			if c := hs.srv.Conversations(testAppID, "alice"); len(c) != 0 {
				t.Errorf("alice still has %v", c)
			}
		}},
		{name: "deleted group with ZEGO-style id", setup: func(hs *harness) { hs.seed("al#ce@x", group("#team&7")) },
			body: body("al#ce@x", "#team&7", 2), outcome: outcome.Deleted},
		{name: "already deleted", body: req, outcome: outcome.AlreadyDeleted, zegoCode: 660800002},
		{name: "invalid ConvType", setup: seedBob, body: body("alice", "bob", 1), outcome: outcome.InvalidRequest, field: "ConvType",
			check: func(t *testing.T, hs *harness) {
				if n := len(hs.srv.Requests()); n != 0 {
					t.Errorf("an invalid request reached ZEGO (%d requests)", n)
				}
			}},
		{name: "invalid ConvId too long", body: body("alice", strings.Repeat("x", 33), 0), outcome: outcome.InvalidRequest, field: "ConvId"},
		{name: "invalid unknown field", body: `{"FromUserId":"alice","ConvId":"bob","ConvType":0,"Extra":1}`, outcome: outcome.InvalidRequest, field: "Extra"},
		{name: "invalid per ZEGO 660000002", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660000002})
		}, body: req, outcome: outcome.InvalidRequest, zegoCode: 660000002, check: stillThere},
		{name: "throttled by ZEGO after retries", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660300005, Times: 3})
		}, body: req, outcome: outcome.Throttled, zegoCode: 660300005, check: stillThere},
		{name: "ZEGO busy then success", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 1, Times: 2})
		}, body: req, outcome: outcome.Deleted},
		{name: "throttled: ZEGO API limit code 7 after retries", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 7, Times: 3})
		}, body: req, outcome: outcome.Throttled, zegoCode: 7, check: stillThere},
		{name: "throttled then success", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660300005, Times: 2})
		}, body: req, outcome: outcome.Deleted},
		{name: "upstream: general business error 660000001 after retries", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660000001, Times: 3})
		}, body: req, outcome: outcome.UpstreamError, zegoCode: 660000001, check: stillThere},
		{name: "upstream: non-JSON answer with HTTP 200", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Body: "OK"})
		}, body: req, outcome: outcome.UpstreamError, check: stillThere},
		{name: "HTTP 503 then success", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", HTTPStatus: http.StatusServiceUnavailable, Times: 2})
		}, body: req, outcome: outcome.Deleted},
		{name: "configuration: signature expired (clock 11 minutes off)", opts: []harnessOpt{withServer(zimtest.WithClock(func() time.Time {
			return time.Now().Add(11 * time.Minute)
		}))}, setup: seedBob, body: req, outcome: outcome.ConfigurationError, zegoCode: 100000004, check: stillThere},
		{name: "upstream permanent code", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660500002})
		}, body: req, outcome: outcome.UpstreamError, zegoCode: 660500002, check: stillThere},
		{name: "upstream HTTP 502 non-JSON after retries", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", HTTPStatus: http.StatusBadGateway, Body: "<html>bad gateway</html>", Times: 3})
		}, body: req, outcome: outcome.UpstreamError},
		{name: "timeout: ZEGO slower than the deadline", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Delay: 5 * time.Second})
		}, body: req, timeout: 600 * time.Millisecond, outcome: outcome.Timeout},
		{name: "unavailable: connection dropped on every attempt", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Drop: true, Times: 3})
		}, body: req, outcome: outcome.Unavailable, check: stillThere},
		{name: "unavailable: Secrets Manager failed", setup: func(hs *harness) {
			hs.creds.err = fmt.Errorf("%w: fetching secret zim/zego: connection refused", secret.ErrUnavailable)
		}, body: req, outcome: outcome.Unavailable},
		// A slow Secrets Manager is unavailable: nothing was sent to ZEGO, so
		// it is never the timeout that says "the deletion may have happened".
		{name: "unavailable: Secrets Manager slower than the deadline, the wait's error wraps the context's", setup: func(hs *harness) {
			hs.creds.slow = func(ctx context.Context) error {
				<-ctx.Done()
				return fmt.Errorf("%w: secret zim/zego: gave up waiting for Secrets Manager: %w", secret.ErrUnavailable, ctx.Err())
			}
		}, body: req, timeout: 600 * time.Millisecond, outcome: outcome.Unavailable},
		{name: "unavailable: Secrets Manager slower than the deadline", setup: func(hs *harness) {
			hs.creds.slow = func(ctx context.Context) error {
				<-ctx.Done()
				return fmt.Errorf("%w: secret zim/zego: gave up waiting for Secrets Manager: %v", secret.ErrUnavailable, ctx.Err())
			}
		}, body: req, timeout: 600 * time.Millisecond, outcome: outcome.Unavailable},
		{name: "unavailable: Secrets Manager fetch past its own timeout", setup: func(hs *harness) {
			hs.creds.slow = func(context.Context) error {
				return fmt.Errorf("%w: secret zim/zego: Secrets Manager did not answer in time: %w", secret.ErrUnavailable, context.DeadlineExceeded)
			}
		}, body: req, outcome: outcome.Unavailable},
		{name: "configuration: secret not found", setup: func(hs *harness) {
			hs.creds.err = fmt.Errorf("%w: secret zim/zego not found", secret.ErrConfiguration)
		}, body: req, outcome: outcome.ConfigurationError},
		{name: "configuration: missing setting", opts: []harnessOpt{withSetupErr(&config.Error{Variable: "ZEGO_SECRET_ID", Rule: "is required"})},
			body: req, outcome: outcome.ConfigurationError},
		{name: "configuration: signature still invalid after refresh", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.SetSecret(testAppID, rotatedKey)
		}, body: req, outcome: outcome.ConfigurationError, zegoCode: 100000005, check: func(t *testing.T, hs *harness) {
			if hs.creds.refreshes != 1 {
				t.Errorf("credentials refreshed %d times, want exactly 1", hs.creds.refreshes)
			}
		}},
		{name: "rotated secret picked up after 100000005", setup: func(hs *harness) {
			hs.seed("alice", peer("bob"))
			hs.srv.SetSecret(testAppID, rotatedKey)
			hs.creds.next = &zim.Credentials{AppID: testAppID, ServerSecret: rotatedKey}
		}, body: req, outcome: outcome.Deleted},
	}
}

var triggers = []string{"direct", "http_api", "rest_api", "sqs"}

func TestContractOutcomesPerTrigger(t *testing.T) {
	t.Parallel()
	for _, trig := range triggers {
		for _, sc := range contractScenarios() {
			t.Run(trig+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				// Virtual time (testing/synctest, ZIM in process): a call cut
				// short by the deadline reports its own outcome within the
				// handler's grace (about 50 ms here), however loaded the
				// machine; on the wall clock a starved worker missed it and
				// the record was reported as an unfinished timeout.
				synctest.Test(t, func(t *testing.T) {
					hs := newHarness(t, append(sc.opts, inProcess())...)
					if sc.setup != nil {
						sc.setup(hs)
					}
					timeout := sc.timeout
					if timeout == 0 {
						timeout = 10 * time.Second
					}
					runScenario(t, hs, trig, sc, timeout)
					if sc.check != nil {
						sc.check(t, hs)
					}
					lines := hs.outcomeLines()
					if len(lines) != 1 || lines[0]["outcome"] != string(sc.outcome) || lines[0]["trigger"] != trig {
						t.Errorf("want one outcome log line with outcome %q and trigger %q, got %v", sc.outcome, trig, lines)
					}
				})
			})
		}
	}
}

func runScenario(t *testing.T, hs *harness, trig string, sc scenario, timeout time.Duration) {
	switch trig {
	case "direct":
		out, err := hs.invoke([]byte(sc.body), timeout)
		if sc.outcome.Success() {
			if err != nil {
				t.Fatalf("unexpected function error %v", err)
			}
			var b outcome.SuccessBody
			mustUnmarshal(t, out, &b)
			if b.Outcome != sc.outcome || b.Code != sc.zegoCode || b.RequestID == "" {
				t.Errorf("answer %s, want Outcome %q Code %d and a RequestId", out, sc.outcome, sc.zegoCode)
			}
			return
		}
		ie := functionError(t, err)
		if ie.Type != sc.outcome.ErrorType() {
			t.Errorf("errorType = %q, want %q (message %q)", ie.Type, sc.outcome.ErrorType(), ie.Message)
		}
		if sc.field != "" && !strings.HasPrefix(ie.Message, sc.field+" ") {
			t.Errorf("errorMessage %q does not name the field %s", ie.Message, sc.field)
		}
		if sc.zegoCode != 0 && !strings.Contains(ie.Message, fmt.Sprint(sc.zegoCode)) {
			t.Errorf("errorMessage %q does not give ZEGO's code %d", ie.Message, sc.zegoCode)
		}
	case "http_api", "rest_api":
		e := httpEvent{method: "POST", path: "/conversations/delete", body: sc.body}
		var a apiAnswer
		if trig == "http_api" {
			out, err := hs.invoke(httpAPIEvent(t, e), timeout)
			a = decodeHTTPAPI(t, out, err)
		} else {
			e.body, e.b64 = b64(sc.body), true // REST bodies arrive base64-encoded here
			out, err := hs.invoke(restEvent(t, e), timeout)
			a = decodeREST(t, out, err)
		}
		assertHTTP(t, a, sc)
	case "sqs":
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "m-1", body: sc.body}), timeout)
		failed := decodeSQS(t, out, err)
		want := []string{}
		if !sc.outcome.Success() {
			want = []string{"m-1"}
		}
		if !slices.Equal(failed, want) {
			t.Errorf("batchItemFailures = %v, want %v", failed, want)
		}
	}
}

func assertHTTP(t *testing.T, a apiAnswer, sc scenario) {
	t.Helper()
	if a.status != sc.outcome.HTTPStatus() {
		t.Errorf("status = %d, want %d (body %v)", a.status, sc.outcome.HTTPStatus(), a.body)
	}
	if sc.outcome.Success() {
		if a.body["Outcome"] != string(sc.outcome) || a.body["Code"] != float64(sc.zegoCode) || a.body["RequestId"] == "" {
			t.Errorf("body %v, want Outcome %q and Code %d", a.body, sc.outcome, sc.zegoCode)
		}
		return
	}
	e, _ := a.body["error"].(map[string]any)
	if e == nil || e["code"] != sc.outcome.ErrorType() || e["message"] == "" {
		t.Fatalf("body %v, want an error object with code %q", a.body, sc.outcome.ErrorType())
	}
	if sc.field != "" && e["field"] != sc.field {
		t.Errorf("error field = %v, want %q", e["field"], sc.field)
	}
	if sc.zegoCode != 0 && sc.outcome != outcome.ConfigurationError {
		if e["zegoCode"] != float64(sc.zegoCode) || e["requestId"] == "" {
			t.Errorf("error %v, want zegoCode %d and a requestId", e, sc.zegoCode)
		}
	}
	switch sc.outcome {
	case outcome.Throttled, outcome.Unavailable:
		if a.headers["Retry-After"] == "" {
			t.Errorf("no Retry-After header on %d", a.status)
		}
	case outcome.ConfigurationError:
		if e["message"] != "the function is not configured correctly; the operator will find the details in its logs" {
			t.Errorf("configuration details leaked to the caller: %v", e["message"])
		}
	}
}
