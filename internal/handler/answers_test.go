package handler

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// sdkError is what the AWS SDK returns for a failed GetSecretValue.
func sdkError(code, msg string) error {
	return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue",
		Err: &smithy.GenericAPIError{Code: code, Message: msg}}
}

// TestServerErrorBodiesAreGeneric: 5xx bodies say what kind of failure it was
// and carry ZEGO's code and request id where ZEGO gave them, nothing more; the
// secret's name, AWS SDK text, account ids, ZEGO's own wording and the
// function's internals stay in the log.
func TestServerErrorBodiesAreGeneric(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): the deadline, the rate
	// limiter and the slow answers are exact however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		const secretID = "zego/credentials"
		const roleARN = "arn:aws:sts::123456789012:assumed-role/zim-deleteconv-ApiFunctionRole/zim-deleteconv-ApiFunction"
		tests := []struct {
			name   string
			opts   []harnessOpt
			setup  func(hs *harness)
			status int
			zego   bool   // zegoCode and requestId expected
			logged string // a detail the log must hold
		}{
			{name: "Secrets Manager failing", status: http.StatusServiceUnavailable, logged: "operation error Secrets Manager: GetSecretValue",
				setup: func(hs *harness) {
					hs.creds.err = &secret.Error{SecretID: secretID, Class: secret.ErrUnavailable, Reason: "Secrets Manager failed internally: retry later",
						Err: sdkError("InternalServiceError", "Service encountered an internal error")}
				}},
			{name: "Secrets Manager access denied", status: http.StatusInternalServerError, logged: roleARN,
				setup: func(hs *harness) {
					hs.creds.err = &secret.Error{SecretID: secretID, Class: secret.ErrConfiguration, Reason: "access denied",
						Err: sdkError("AccessDeniedException", "User: "+roleARN+" is not authorized to perform: secretsmanager:GetSecretValue on resource: "+secretID)}
				}},
			{name: "setting missing", status: http.StatusInternalServerError, logged: "ZEGO_SECRET_ID",
				opts: []harnessOpt{withSetupErr(&config.Error{Variable: "ZEGO_SECRET_ID", Rule: "is required"})}},
			{name: "ZEGO permanent code", status: http.StatusBadGateway, zego: true, logged: "660500002",
				setup: func(hs *harness) { hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660500002}) }},
			{name: "ZEGO answers HTML", status: http.StatusBadGateway, logged: "bad gateway at the edge",
				setup: func(hs *harness) {
					hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", HTTPStatus: http.StatusBadGateway, Body: "<html>bad gateway at the edge</html>", Times: 3})
				}},
			{name: "connection dropped", status: http.StatusServiceUnavailable, logged: "transport",
				setup: func(hs *harness) { hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Drop: true, Times: 3}) }},
			{name: "ZEGO slower than the deadline", status: http.StatusGatewayTimeout, logged: "deadline",
				setup: func(hs *harness) { hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Delay: 5 * time.Second}) }},
			{name: "panic", status: http.StatusInternalServerError, logged: "index out of range",
				setup: func(hs *harness) { hs.h.zim = panicZIM{} }},
		}
		forbidden := []string{secretID, "Secrets Manager", "operation error", "arn:", "123456789012", "ZEGO_SECRET_ID",
			"bad gateway at the edge", "zim:", "127.0.0.1", "index out of range", "goroutine"}
		messages := map[string][]string{} // error code → every message seen
		for _, trig := range []string{"http_api", "rest_api"} {
			for _, tt := range tests {
				hs := newHarness(t, append(tt.opts, inProcess())...)
				hs.seed("alice", peer("bob"))
				if tt.setup != nil {
					tt.setup(hs)
				}
				e := httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0)}
				var a apiAnswer
				if trig == "http_api" {
					out, err := hs.invoke(httpAPIEvent(t, e), 600*time.Millisecond)
					a = decodeHTTPAPI(t, out, err)
				} else {
					out, err := hs.invoke(restEvent(t, e), 600*time.Millisecond)
					a = decodeREST(t, out, err)
				}
				what := trig + "/" + tt.name
				if a.status != tt.status {
					t.Errorf("%s: status %d, want %d (body %v)", what, a.status, tt.status, a.body)
					continue
				}
				e2, _ := a.body["error"].(map[string]any)
				if len(a.body) != 1 || e2 == nil {
					t.Errorf("%s: body %v, want only the error object", what, a.body)
					continue
				}
				for k := range e2 {
					if !slices.Contains([]string{"code", "message", "zegoCode", "requestId"}, k) {
						t.Errorf("%s: error object has %q: %v", what, k, e2)
					}
				}
				if _, ok := e2["zegoCode"]; ok != tt.zego || (tt.zego && e2["requestId"] == "") {
					t.Errorf("%s: error object %v, want zegoCode and requestId: %v", what, e2, tt.zego)
				}
				if a.status == http.StatusServiceUnavailable && a.headers["Retry-After"] == "" {
					t.Errorf("%s: 503 without Retry-After", what)
				}
				msg, _ := e2["message"].(string)
				for _, f := range forbidden {
					if strings.Contains(msg, f) {
						t.Errorf("%s: message %q holds %q", what, msg, f)
					}
				}
				code, _ := e2["code"].(string)
				if !slices.Contains(messages[code], msg) {
					messages[code] = append(messages[code], msg)
				}
				if !strings.Contains(hs.logs.String(), tt.logged) {
					t.Errorf("%s: the log does not hold the detail %q", what, tt.logged)
				}
			}
		}
		for code, msgs := range messages {
			if len(msgs) != 1 {
				t.Errorf("%s: the message depends on the failure's details: %q", code, msgs)
			}
		}
	})
}

// TestClientErrorBodiesKeepTheirDetail: what the caller can act on stays in
// 4xx bodies: the field and rule of a 400, ZEGO's code and Retry-After on a 429.
func TestClientErrorBodiesKeepTheirDetail(t *testing.T) {
	t.Parallel()
	for _, trig := range []string{"http_api", "rest_api"} {
		hs := newHarness(t)
		hs.seed("alice", peer("bob"))
		a := hs.invokeHTTP(trig, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 1)})
		e, _ := a.body["error"].(map[string]any)
		if a.status != http.StatusBadRequest || e["field"] != "ConvType" || e["message"] != "ConvType must be 0 (one-on-one) or 2 (group)" {
			t.Errorf("%s: 400 answer %d %v, want the field and the rule", trig, a.status, a.body)
		}

		hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660300005, Times: 3})
		a = hs.invokeHTTP(trig, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0)})
		e, _ = a.body["error"].(map[string]any)
		if a.status != http.StatusTooManyRequests || a.headers["Retry-After"] == "" || e["zegoCode"] != float64(660300005) ||
			!strings.Contains(e["message"].(string), "660300005") {
			t.Errorf("%s: 429 answer %d %v %v, want Retry-After and ZEGO's code", trig, a.status, a.headers, a.body)
		}
	}
}

// TestDirectInvokeErrorsSayWhy: a direct invocation's caller is an IAM
// principal allowed to invoke the function (an operator's tool), so its
// errorMessage keeps the reason, though never the secret's value.
func TestDirectInvokeErrorsSayWhy(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.creds.err = &secret.Error{SecretID: "zego/credentials", Class: secret.ErrUnavailable, Reason: "Secrets Manager failed internally: retry later",
		Err: sdkError("InternalServiceError", "Service encountered an internal error")}
	_, err := hs.invoke([]byte(body("alice", "bob", 0)), time.Second)
	ie := functionError(t, err)
	if ie.Type != "Unavailable" || !strings.Contains(ie.Message, "Secrets Manager failed internally") {
		t.Errorf("got %+v, want Unavailable with the reason", ie)
	}
}
