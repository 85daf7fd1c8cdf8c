package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/redelivery"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const (
	testQueueARN = "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv-queue"
	testQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv-queue"
	testDLQURL   = "https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv-dlq"
)

// prodBackoff is the template's default backoff.
var prodBackoff = redelivery.Backoff{Base: time.Minute, Max: time.Hour}

// fakeRedelivery records what the handler asks of SQS; changeErr and sendErr
// make those calls fail.
type fakeRedelivery struct {
	mu        sync.Mutex
	changes   map[string]map[string]time.Duration // queue URL → receipt handle → timeout
	letters   []redelivery.DeadLetter
	changeErr error
	sendErr   error
}

func (f *fakeRedelivery) ChangeVisibility(_ context.Context, queueURL string, changes []redelivery.Visibility) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changeErr != nil {
		return f.changeErr
	}
	if f.changes == nil {
		f.changes = map[string]map[string]time.Duration{}
	}
	if f.changes[queueURL] == nil {
		f.changes[queueURL] = map[string]time.Duration{}
	}
	for _, c := range changes {
		f.changes[queueURL][c.ReceiptHandle] = c.Timeout
	}
	return nil
}

func (f *fakeRedelivery) SendDeadLetter(_ context.Context, m redelivery.DeadLetter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return f.sendErr
	}
	f.letters = append(f.letters, m)
	return nil
}

// hidden returns the visibility timeouts set on the test queue, by message id
// (the receipt handles are "rh-" + message id).
func (f *fakeRedelivery) hidden() map[string]time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]time.Duration{}
	for h, d := range f.changes[testQueueURL] {
		out[strings.TrimPrefix(h, "rh-")] = d
	}
	return out
}

func withRedelivery(f *fakeRedelivery, b redelivery.Backoff, deadLetterURL string) harnessOpt {
	return func(c *harnessConfig) { c.handlerOpts = append(c.handlerOpts, WithRedelivery(f, b, deadLetterURL)) }
}

// delivery is one record of a test batch: its n-th receive.
type delivery struct {
	id, body string
	n        int
	group    string // FIFO message group: the batch comes from a FIFO queue
}

// batchOf is an SQS event as Lambda delivers it: each record with its own
// receipt handle ("rh-" + id) and ApproximateReceiveCount.
func batchOf(t *testing.T, ds ...delivery) []byte {
	var ev events.SQSEvent
	for _, d := range ds {
		rec := events.SQSMessage{MessageId: d.id, ReceiptHandle: "rh-" + d.id, Body: d.body, EventSource: "aws:sqs",
			EventSourceARN: testQueueARN, AWSRegion: "us-east-1",
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(max(d.n, 1))}}
		if d.group != "" {
			rec.EventSourceARN += ".fifo"
			rec.Attributes["MessageGroupId"] = d.group
		}
		ev.Records = append(ev.Records, rec)
	}
	return mustJSON(t, ev)
}

// emfCounts sums the Requests metric per outcome.
func emfCounts(t *testing.T, hs *harness) map[string]float64 { return emfCountsIn(t, hs.emf.String()) }

// emfCountsIn sums the Requests metric per outcome of EMF lines.
func emfCountsIn(t *testing.T, lines string) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	for _, s := range strings.Split(strings.TrimSpace(lines), "\n") {
		if s == "" {
			continue
		}
		var l map[string]any
		mustUnmarshal(t, []byte(s), &l)
		if n, ok := l["Requests"].(float64); ok {
			got[l["Outcome"].(string)] += n
		}
	}
	return got
}

func TestSQSFailedRecordsBackOffByReceiveCount(t *testing.T) {
	t.Parallel()
	f := &fakeRedelivery{}
	hs := newHarness(t, withRedelivery(f, prodBackoff, ""))
	var ds []delivery
	for i, n := range []int{1, 2, 3, 7, 20} {
		conv := fmt.Sprintf("c%d", i)
		hs.seed("u", peer(conv))
		// A permanent code of one record each: no early stop.
		hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: conv, Code: 123456})
		ds = append(ds, delivery{id: fmt.Sprintf("m-%d", n), body: body("u", conv, 0), n: n})
	}
	hs.seed("u", peer("ok"))
	ds = append(ds,
		delivery{id: "ok", body: body("u", "ok", 0), n: 4},
		delivery{id: "bad", body: `{"FromUserId":"u"}`, n: 2}, // invalid, no dead-letter queue: reported failed as before
	)
	out, err := hs.invoke(batchOf(t, ds...), 10*time.Second)
	failed := decodeSQS(t, out, err)
	if want := []string{"m-1", "m-2", "m-3", "m-7", "m-20", "bad"}; !slices.Equal(failed, want) {
		t.Fatalf("batchItemFailures = %v, want %v", failed, want)
	}
	want := map[string]time.Duration{"m-1": time.Minute, "m-2": 2 * time.Minute, "m-3": 4 * time.Minute, "m-7": time.Hour, "m-20": time.Hour}
	if got := f.hidden(); !mapsEqual(got, want) {
		t.Errorf("visibility timeouts %v, want %v (the invalid record keeps the queue's, the deleted one none)", got, want)
	}
}

func mapsEqual(a, b map[string]time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSQSBackoffFailureChangesNothingElse(t *testing.T) {
	t.Parallel()
	f := &fakeRedelivery{changeErr: errors.New("AccessDenied: sqs:ChangeMessageVisibility on arn:aws:sqs:us-east-1:123456789012:zim-deleteconv-queue")}
	hs := newHarness(t, withRedelivery(f, prodBackoff, ""))
	hs.seed("u", peer("a"), peer("b"))
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "b", Code: 123456})
	out, err := hs.invoke(batchOf(t, delivery{id: "a", body: body("u", "a", 0)}, delivery{id: "b", body: body("u", "b", 0)}), 10*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("batchItemFailures = %v, want b only", got)
	}
	var warned bool
	for _, l := range hs.logs.lines(t) {
		if strings.HasPrefix(l["msg"].(string), "failed records not backed off") && l["level"] == "WARN" && l["records"] == float64(1) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning that the backoff failed")
	}
	if strings.Contains(string(out), "AccessDenied") {
		t.Errorf("the answer carries the SDK's error: %s", out)
	}
}

// TestSQSBatchStopsEarly: when the first probeRecords records tried fail the
// same way, the others are reported failed without a call, and backed off.
func TestSQSBatchStopsEarly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []harnessOpt
		setup   func(hs *harness)
		outcome string // of the records tried
		calls   int    // distinct conversations ZEGO was asked about
	}{
		{"ZEGO answers 500", nil, func(hs *harness) {
			hs.srv.Inject(zimtest.Fault{HTTPStatus: http.StatusInternalServerError, Times: 1000})
		}, "upstream_error", probeRecords},
		{"ZEGO answers busy", nil, func(hs *harness) {
			hs.srv.Inject(zimtest.Fault{Code: 660000001, Times: 1000})
		}, "upstream_error", probeRecords},
		{"ZEGO rate limits", nil, func(hs *harness) {
			hs.srv.Inject(zimtest.Fault{Code: 660300005, Times: 1000})
		}, "throttled", probeRecords},
		{"ZEGO unreachable", nil, func(hs *harness) {
			hs.srv.Inject(zimtest.Fault{Drop: true, Times: 1000})
		}, "unavailable", probeRecords},
		{"the secret is wrong", nil, func(hs *harness) {
			hs.srv.SetSecret(testAppID, rotatedKey)
		}, "configuration_error", probeRecords},
		{"a setting is wrong", []harnessOpt{withSetupErr(errors.New("ZEGO_API_URL is invalid"))}, nil, "configuration_error", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeRedelivery{}
			hs := newHarness(t, append(tt.opts, withRedelivery(f, prodBackoff, ""))...)
			if tt.setup != nil {
				tt.setup(hs)
			}
			var ds []delivery
			var ids []string
			for i := range 10 {
				conv := fmt.Sprintf("c%d", i)
				hs.seed("u", peer(conv))
				ds = append(ds, delivery{id: fmt.Sprintf("m-%d", i), body: body("u", conv, 0), n: 2})
				ids = append(ids, fmt.Sprintf("m-%d", i))
			}
			out, err := hs.invoke(batchOf(t, ds...), 20*time.Second)
			if got := decodeSQS(t, out, err); !slices.Equal(got, ids) {
				t.Fatalf("batchItemFailures = %v, want every record", got)
			}
			asked := map[string]bool{}
			for _, r := range hs.srv.Requests() {
				asked[r.ConvID] = true
			}
			if len(asked) != tt.calls {
				t.Errorf("ZEGO was asked about %d records (%v), want %d", len(asked), asked, tt.calls)
			}
			tried, skipped := 0, 0
			for _, l := range hs.outcomeLines() {
				switch l["outcome"] {
				case tt.outcome:
					tried++
				case "skipped":
					skipped++
					if e, _ := l["error"].(string); !strings.Contains(e, "failing the same way ("+tt.outcome) {
						t.Errorf("skipped record's error %q does not say why", e)
					}
				default:
					t.Errorf("outcome line %v", l)
				}
			}
			if tried != probeRecords || skipped != 10-probeRecords {
				t.Errorf("%d records tried and %d skipped, want %d and %d", tried, skipped, probeRecords, 10-probeRecords)
			}
			if h := f.hidden(); len(h) != 10 || h["m-9"] != 2*time.Minute {
				t.Errorf("visibility timeouts %v, want every record hidden for 2m (second receive)", h)
			}
		})
	}
}

// TestSQSInstanceRemembersTheOutage: after a batch stopped early, the
// instance's next batch probes with one record, and stops if it fails the
// same way; a success ends that, and a failure of another kind is counted
// afresh.
func TestSQSInstanceRemembersTheOutage(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	z := &switchZIM{ZIM: hs.h.zim}
	hs.h.zim = z
	n := 0
	tried := func(want int, step string) {
		t.Helper()
		var ds []delivery
		for range 10 {
			n++
			conv := fmt.Sprintf("c%d", n)
			hs.seed("u", peer(conv))
			ds = append(ds, delivery{id: conv, body: body("u", conv, 0)})
		}
		out, err := hs.invoke(batchOf(t, ds...), 20*time.Second)
		decodeSQS(t, out, err)
		if got := z.take(); got != want {
			t.Errorf("%s: %d records tried, want %d", step, got, want)
		}
	}
	z.set(&zim.ResponseError{Action: "DeleteConv", HTTPStatus: 500})
	tried(probeRecords, "first batch of the outage")
	tried(1, "next batch")
	tried(1, "and the next")
	z.set(nil)
	tried(10, "ZEGO is back")
	z.set(&zim.APIError{Action: "DeleteConv", Code: 660000001})
	tried(probeRecords, "another outage")
	z.set(&zim.ResponseError{Action: "DeleteConv", HTTPStatus: 503})
	tried(probeRecords, "it changes its answer")
}

// switchZIM fails every deletion with err while it is set; it counts the
// deletions tried.
type switchZIM struct {
	ZIM
	mu    sync.Mutex
	err   error
	tried int
}

func (z *switchZIM) set(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.err = err
}

func (z *switchZIM) take() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := z.tried
	z.tried = 0
	return n
}

func (z *switchZIM) DeleteConversation(ctx context.Context, req zim.DeleteConvRequest) (*zim.Response, error) {
	z.mu.Lock()
	z.tried++
	err := z.err
	z.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return z.ZIM.DeleteConversation(ctx, req)
}

func TestSQSBatchDoesNotStopOnDifferentFailures(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	var ds []delivery
	codes := []int{123456, 660500002, 123457, 660000001, 123458, 660500002}
	for i, code := range codes {
		conv := fmt.Sprintf("c%d", i)
		hs.seed("u", peer(conv))
		hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: conv, Code: code, Times: 10})
		ds = append(ds, delivery{id: conv, body: body("u", conv, 0)})
	}
	out, err := hs.invoke(batchOf(t, ds...), 10*time.Second)
	if got := decodeSQS(t, out, err); len(got) != len(codes) {
		t.Fatalf("batchItemFailures = %v", got)
	}
	asked := map[string]bool{}
	for _, r := range hs.srv.Requests() {
		asked[r.ConvID] = true
	}
	if len(asked) != len(codes) {
		t.Errorf("ZEGO was asked about %d records, want all %d: failures of one record each do not stop the batch", len(asked), len(codes))
	}
}

// TestSQSEarlyStopRule drives the rule on sequences of finished records.
func TestSQSEarlyStopRule(t *testing.T) {
	t.Parallel()
	http500 := &zim.ResponseError{Action: "DeleteConv", HTTPStatus: 500}
	http502 := &zim.ResponseError{Action: "DeleteConv", HTTPStatus: 502}
	busy := &zim.APIError{Action: "DeleteConv", Code: 660000001}
	unknown := &zim.APIError{Action: "DeleteConv", Code: 123456}
	fail := func(o outcome.Outcome, err error) result { return result{outcome: o, err: err} }
	ok := result{outcome: outcome.Deleted}
	up500, up502, upBusy := fail(outcome.UpstreamError, http500), fail(outcome.UpstreamError, http502), fail(outcome.UpstreamError, busy)
	tests := []struct {
		name string
		seq  []result
		stop bool
	}{
		{"three 500s", []result{up500, up500, up500}, true},
		{"three busy", []result{upBusy, upBusy, upBusy}, true},
		{"two 500s", []result{up500, up500}, false},
		{"500, 502, 500", []result{up500, up502, up500}, false},
		{"a success breaks the run", []result{up500, up500, ok, up500, up500}, false},
		{"after a success, three 500s", []result{ok, up500, up500, up500}, true},
		{"an unknown code is one record's", []result{fail(outcome.UpstreamError, unknown), fail(outcome.UpstreamError, unknown), fail(outcome.UpstreamError, unknown)}, false},
		{"user not found is one record's", []result{fail(outcome.UpstreamError, &zim.APIError{Code: 660500002}), fail(outcome.UpstreamError, &zim.APIError{Code: 660500002}), fail(outcome.UpstreamError, &zim.APIError{Code: 660500002})}, false},
		{"invalid by ZEGO is one record's", []result{fail(outcome.InvalidRequest, &zim.APIError{Code: 660000002}), fail(outcome.InvalidRequest, &zim.APIError{Code: 660000002}), fail(outcome.InvalidRequest, &zim.APIError{Code: 660000002})}, false},
		{"timeouts", []result{fail(outcome.Timeout, context.DeadlineExceeded), fail(outcome.Timeout, context.DeadlineExceeded), fail(outcome.Timeout, context.DeadlineExceeded)}, false},
		{"configuration", []result{fail(outcome.ConfigurationError, zim.ErrSignatureInvalid), fail(outcome.ConfigurationError, zim.ErrSignatureInvalid), fail(outcome.ConfigurationError, errors.New("secret"))}, true},
		{"unavailable", []result{fail(outcome.Unavailable, zim.ErrTransport), fail(outcome.Unavailable, zim.ErrTransport), fail(outcome.Unavailable, zim.ErrTransport)}, true},
		{"ZEGO's rate limit", []result{fail(outcome.Throttled, zim.ErrRateLimited), fail(outcome.Throttled, zim.ErrRateLimited), fail(outcome.Throttled, zim.ErrRateLimited)}, true},
		{"own limiter out of time", []result{fail(outcome.Throttled, zim.ErrThrottled), fail(outcome.Throttled, zim.ErrThrottled), fail(outcome.Throttled, zim.ErrThrottled)}, false},
		{"mixed classes", []result{up500, fail(outcome.Unavailable, zim.ErrTransport), up500}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := (&invocation{h: &Handler{sqsWorkers: 10}}).newBatch(nil)
			for _, r := range tt.seq {
				b.sem <- struct{}{}
				b.attempted(r, false)
			}
			if got := b.stop() != nil; got != tt.stop {
				t.Errorf("stopped = %t, want %t", got, tt.stop)
			}
		})
	}
}

// TestSQSProbesBeforeTheFirstSuccess: until a record succeeds, at most
// probeRecords records are in flight; after it, the batch opens up.
func TestSQSProbesBeforeTheFirstSuccess(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		z := &gateZIM{release: make(chan struct{})}
		h := New(z, discardLogger(), nil, "", nil)
		var ds []delivery
		for i := range 10 {
			ds = append(ds, delivery{id: fmt.Sprintf("m-%d", i), body: body("u", fmt.Sprintf("c%d", i), 0)})
		}
		done := make(chan []byte)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			out, _ := h.Invoke(ctx, batchOf(t, ds...))
			done <- out
		}()
		synctest.Wait() // every record started or waiting for its turn
		if n := z.maxSeen(); n != probeRecords {
			t.Fatalf("%d records in flight before any success, want %d", n, probeRecords)
		}
		close(z.release) // they succeed: the rest may go together
		out := <-done
		if !strings.Contains(string(out), `"batchItemFailures":[]`) {
			t.Fatalf("answer %s", out)
		}
		if n := z.maxSeen(); n < 10-probeRecords {
			t.Errorf("at most %d records in flight after the first success, want the other %d together", n, 10-probeRecords)
		}
	})
}

// gateZIM holds every deletion until release is closed; each then takes a
// second. It remembers the most deletions in flight at once.
type gateZIM struct {
	ZIM
	release  chan struct{}
	mu       sync.Mutex
	inFlight int
	most     int
}

func (g *gateZIM) DeleteConversation(ctx context.Context, req zim.DeleteConvRequest) (*zim.Response, error) {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	time.Sleep(time.Second)
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return &zim.Response{RequestID: "r"}, nil
}

func (g *gateZIM) maxSeen() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}

// TestSQSJobsDoNotHoldTheProbes: jobs run for most of the invocation; their
// first conversation deleted opens the batch, so single deletions behind
// three jobs do not wait for the jobs' end.
func TestSQSJobsDoNotHoldTheProbes(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, withRate(50))
	var ds []delivery
	for j := range probeRecords {
		user := fmt.Sprintf("job-%d", j)
		for i := range 100 {
			hs.seed(user, peer(fmt.Sprintf("c%03d", i)))
		}
		ds = append(ds, delivery{id: user, body: fmt.Sprintf(`{"FromUserId":%q,"AllConversations":true}`, user)})
	}
	for i := range 7 {
		conv := fmt.Sprintf("s%d", i)
		hs.seed("single", peer(conv))
		ds = append(ds, delivery{id: conv, body: body("single", conv, 0)})
	}
	// 300 conversations at 50/s: the jobs are cut by the deadline.
	out, err := hs.invoke(batchOf(t, ds...), 3*time.Second)
	failed := decodeSQS(t, out, err)
	if left := hs.srv.Conversations(testAppID, "single"); len(left) != 0 {
		t.Errorf("single deletions left %v (failed %v): they waited for the jobs", left, failed)
	}
}

func TestSQSInvalidRecordsGoToTheDeadLetterQueue(t *testing.T) {
	t.Parallel()
	f := &fakeRedelivery{}
	hs := newHarness(t, withRedelivery(f, prodBackoff, testDLQURL))
	hs.seed("u", peer("ok"), peer("refused"))
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "refused", Code: 660000002})
	badBody := `{"FromUserId": "u", "ConvId": "x", "ConvType": 1}`
	out, err := hs.invoke(batchOf(t,
		delivery{id: "ok", body: body("u", "ok", 0)},
		delivery{id: "bad", body: badBody},
		delivery{id: "refused", body: body("u", "refused", 0)},
	), 10*time.Second)
	if got := decodeSQS(t, out, err); len(got) != 0 {
		t.Fatalf("batchItemFailures = %v, want none: the invalid records are in the dead-letter queue", got)
	}
	slices.SortFunc(f.letters, func(a, b redelivery.DeadLetter) int { return strings.Compare(a.DeduplicationID, b.DeduplicationID) })
	if len(f.letters) != 2 {
		t.Fatalf("dead letters %+v, want the two invalid records", f.letters)
	}
	bad, refused := f.letters[0], f.letters[1]
	if bad.QueueURL != testDLQURL || bad.Body != badBody || bad.Reason != "invalid_request: ConvType must be 0 (one-on-one) or 2 (group)" {
		t.Errorf("dead letter of the invalid body: %+v", bad)
	}
	reqs := hs.srv.Requests()
	var refusedID string
	for _, r := range reqs {
		if r.ConvID == "refused" {
			refusedID = r.RequestID
		}
	}
	if refused.Body != body("u", "refused", 0) || refused.Reason != "invalid_request: ZEGO code 660000002, RequestId "+refusedID {
		t.Errorf("dead letter of the record ZEGO refused: %+v, want code 660000002 and RequestId %s", refused, refusedID)
	}
	if h := f.hidden(); len(h) != 0 {
		t.Errorf("visibility changed %v: nothing failed", h)
	}
	if got := emfCounts(t, hs); got["invalid_request"] != 2 || got["deleted"] != 1 {
		t.Errorf("EMF counts %v, want 2 invalid requests and 1 deleted", got)
	}
}

func TestSQSDeadLetterSendFailsReportsTheRecord(t *testing.T) {
	t.Parallel()
	f := &fakeRedelivery{sendErr: errors.New("AccessDenied: sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:zim-deleteconv-dlq")}
	hs := newHarness(t, withRedelivery(f, prodBackoff, testDLQURL))
	out, err := hs.invoke(batchOf(t, delivery{id: "bad", body: `not JSON`, n: 3}), 10*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"bad"}) {
		t.Fatalf("batchItemFailures = %v, want the record the dead-letter queue refused", got)
	}
	if h := f.hidden(); len(h) != 0 {
		t.Errorf("visibility changed %v: an invalid record keeps the queue's", h)
	}
	var logged bool
	for _, l := range hs.logs.lines(t) {
		if strings.HasPrefix(l["msg"].(string), "record not moved to the dead-letter queue") && l["level"] == "ERROR" && l["messageId"] == "bad" {
			logged = true
		}
	}
	if !logged || strings.Contains(string(out), "AccessDenied") {
		t.Errorf("logged %t, answer %s", logged, out)
	}
}

// TestSQSFIFODeadLetterKeepsTheGroupGoing: on a FIFO queue the dead letter
// keeps the record's group and a deduplication id of its own, and the group's
// later records are tried (the invalid one is gone, not failed).
func TestSQSFIFODeadLetterKeepsTheGroupGoing(t *testing.T) {
	t.Parallel()
	f := &fakeRedelivery{}
	hs := newHarness(t, withRedelivery(f, prodBackoff, testDLQURL+".fifo"))
	hs.seed("u", peer("a"))
	out, err := hs.invoke(batchOf(t,
		delivery{id: "bad", body: `{}`, group: "G"},
		delivery{id: "a", body: body("u", "a", 0), group: "G"},
	), 10*time.Second)
	if got := decodeSQS(t, out, err); len(got) != 0 {
		t.Fatalf("batchItemFailures = %v", got)
	}
	if len(f.letters) != 1 || f.letters[0].GroupID != "G" || f.letters[0].DeduplicationID != "bad" {
		t.Errorf("dead letters %+v", f.letters)
	}
	if len(hs.srv.Conversations(testAppID, "u")) != 0 {
		t.Errorf("the group's next record was not tried")
	}
}

// lateZIM answers every call only when release is closed, whatever its
// context says: a call that was on the wire when the deadline came.
type lateZIM struct {
	release  chan struct{}
	started  chan struct{}
	listOnce sync.Once
}

func (z *lateZIM) DeleteConversation(context.Context, zim.DeleteConvRequest) (*zim.Response, error) {
	z.started <- struct{}{}
	<-z.release
	return &zim.Response{RequestID: "late", Attempts: 1, Latency: time.Second}, nil
}

func (z *lateZIM) QueryConversationList(context.Context, string, int, int64) (*zim.ConversationList, error) {
	first := false
	z.listOnce.Do(func() { first = true })
	if !first {
		return &zim.ConversationList{}, nil
	}
	return &zim.ConversationList{List: []zim.Conversation{peer("j1"), peer("j2")}}, nil
}

// TestSQSLateResultsAreNotLost: a single deletion still on the wire at the
// deadline is reported failed and counted once, as the timeout it was
// reported as (its real outcome goes to the log); a job's conversations that
// end after the invocation answered are counted by the next invocation.
func TestSQSLateResultsAreNotLost(t *testing.T) {
	t.Parallel()
	z := &lateZIM{release: make(chan struct{}), started: make(chan struct{}, 10)}
	logs, emf := &syncBuffer{}, &syncBuffer{}
	h := New(z, slog.New(slog.NewJSONHandler(logs, nil)), outcome.NewMetrics(emf), "", nil)
	invoke := func(ev []byte, timeout time.Duration) []string {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		out, err := h.Invoke(ctx, ev)
		return decodeSQS(t, out, err)
	}
	failed := invoke(batchOf(t,
		delivery{id: "single", body: body("u", "c", 0)},
		delivery{id: "job", body: `{"FromUserId":"v","AllConversations":true}`},
	), 500*time.Millisecond)
	if !slices.Equal(failed, []string{"single", "job"}) {
		t.Fatalf("batchItemFailures = %v, want both records unfinished", failed)
	}
	if got := emfCountsIn(t, emf.String()); got["timeout"] != 2 || len(got) != 1 {
		t.Fatalf("EMF counts at the deadline %v, want 2 timeouts", got)
	}
	for range 3 { // the single deletion and the job's two
		<-z.started
	}
	close(z.release)
	waitForLog(t, logs, func(l map[string]any) bool {
		return strings.HasPrefix(l["msg"].(string), "late result") && l["messageId"] == "job"
	})
	waitForLog(t, logs, func(l map[string]any) bool {
		return strings.HasPrefix(l["msg"].(string), "late result") && l["messageId"] == "single" && l["outcome"] == "deleted" && l["reportedAs"] == "timeout"
	})

	before := len(emf.String())
	invoke(batchOf(t, delivery{id: "next", body: `{}`}), 5*time.Second)
	got := emfCountsIn(t, emf.String()[before:])
	if got["deleted"] != 2 || got["invalid_request"] != 1 || len(got) != 2 {
		t.Errorf("EMF counts of the next invocation %v, want the job's 2 late deletions and its own invalid record (the single deletion was counted as its timeout)", got)
	}
}

// waitForLog waits (bounded by the test's deadline) for a log line.
func waitForLog(t *testing.T, logs *syncBuffer, match func(map[string]any) bool) {
	t.Helper()
	for {
		if slices.ContainsFunc(logs.lines(t), match) {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("log line never written")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
