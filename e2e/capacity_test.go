package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// zegoBudget is ZEGO's DeleteConv limit per AppId: 20 requests in any
// one-second window, across every caller.
const zegoBudget = 20

// httpCall is one API Gateway call of the capacity test and the answer the
// function owes it.
type httpCall struct {
	event  []byte
	status int
	conv   zim.Conversation // the conversation a 200 deletes
	stored bool             // a 200 deletes it (else: already deleted)
	code   string           // the error code of a 4xx
}

// capacityCalls builds n HTTP API calls of user: valid deletions of its
// stored conversations, with a GET (405), an invalid request (400) and a
// conversation that is not stored (200, already deleted) spread among them.
// It returns the calls and the conversations to seed.
func capacityCalls(t *testing.T, user string, n int) ([]httpCall, []zim.Conversation) {
	t.Helper()
	var calls []httpCall
	var seed []zim.Conversation
	for i := range n {
		switch i {
		case n / 4:
			calls = append(calls, httpCall{event: httpAPIMethod(t, "GET", nil), status: http.StatusMethodNotAllowed, code: "MethodNotAllowed"})
			continue
		case n / 2:
			calls = append(calls, httpCall{event: httpAPI(t, direct(user, "x", 1)), status: http.StatusBadRequest, code: "InvalidRequest"})
			continue
		}
		c := peer(fmt.Sprintf("http-%03d", i))
		if i%3 == 0 {
			c = group(fmt.Sprintf("#http-%03d", i))
		}
		call := httpCall{event: httpAPI(t, direct(user, c.ConvID, c.ConvType)), status: http.StatusOK, conv: c, stored: i != 3*n/4}
		if call.stored {
			seed = append(seed, c)
		}
		calls = append(calls, call)
	}
	return calls, seed
}

// httpAPIMethod is events/apigw-http.json sent with another method, as API
// Gateway sends it for an ANY route on the path.
func httpAPIMethod(t *testing.T, method string, body []byte) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(httpAPI(t, body), &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev["requestContext"].(map[string]any)
	rc["http"].(map[string]any)["method"] = method
	ev["routeKey"], rc["routeKey"] = "ANY /conversations/delete", "ANY /conversations/delete"
	b, _ := json.Marshal(ev)
	return b
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestCapacityHTTPAndQueueBacklog runs the stack as deployed: two api and
// two queue function instances, one emulator each, sharing the budget of
// 20/s through the table. A backlog of 320 single deletions is sent to the
// queue at once, and while it drains 40 HTTP API calls go to a free api
// instance one after the other. Every call gets the function's own
// answer (200, 400 or 405, never a throttle or an emulator error); every
// message is received once and deleted, nothing reaches the dead-letter
// queue; the ZIM server never sees more than 20 DeleteConv calls in a
// one-second window. Drain rate and HTTP latency are logged, not asserted.
func TestCapacityHTTPAndQueueBacklog(t *testing.T) {
	t.Parallel()
	const (
		backlog   = 320
		httpCalls = 40
		queueUser = "cap-queue"
		httpUser  = "cap-http"
	)
	s, q := queueStack(t, "capacity", devstack.QueueConfig{})
	w := newWorld(t, s)
	convs, err := s.SeedConversations(t.Context(), queueUser, backlog)
	if err != nil {
		t.Fatal(err)
	}
	calls, seed := capacityCalls(t, httpUser, httpCalls)
	w.seed(httpUser, seed...)
	var msgs []devstack.Message
	for _, c := range convs {
		msgs = append(msgs, devstack.Message{Body: string(direct(queueUser, c.ConvID, c.ConvType))})
	}

	sent := time.Now()
	ids, err := q.Send(t.Context(), msgs...)
	if err != nil {
		t.Fatal(err)
	}

	// The HTTP calls, one at a time on a free api instance, while the queue
	// function works through the backlog.
	type answer struct {
		res        devstack.InvokeResult
		start, end time.Time
	}
	answers := make([]answer, len(calls))
	for i, c := range calls {
		start := time.Now()
		res, err := s.Invoke(t.Context(), c.event)
		if err != nil {
			t.Fatalf("HTTP call %d: the emulator failed: %v", i, err)
		}
		answers[i] = answer{res, start, time.Now()}
	}
	httpStart, httpEnd := answers[0].start, answers[len(answers)-1].end
	during, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	after := waitDrained(t, q, 90*time.Second)
	if after.DeadLetters != 0 {
		t.Errorf("%d messages in the dead-letter queue, want none", after.DeadLetters)
	}

	// Every instance ran with the template's budget environment.
	if n := checkBudgetEnv(t, s); n < 1+len(s.QueueFunctions()) {
		t.Errorf("%d instances ran a bootstrap, want at least an api instance and every queue instance", n)
	}

	reqs := w.deletes()
	zegoAnswer := map[zim.Conversation]string{} // RequestId of the deleting call
	deleted := map[string]map[zim.Conversation]int{queueUser: {}, httpUser: {}}
	var queueDuring, throttled int
	for _, r := range reqs {
		cv := zim.Conversation{ConvID: r.ConvID, ConvType: r.ConvType}
		switch {
		case r.Code == codeAppIDRateLimited:
			throttled++
		case r.HTTPStatus == http.StatusOK && r.Code == 0 && deleted[r.FromUserID] != nil:
			deleted[r.FromUserID][cv]++
			if r.FromUserID == httpUser {
				zegoAnswer[cv] = r.RequestID
			}
		}
		if r.FromUserID == queueUser && !r.Time.Before(httpStart) && !r.Time.After(httpEnd) {
			queueDuring++
		}
	}

	// Every HTTP call got the contract's answer from the function.
	var latencies, noCall []time.Duration
	var cold time.Duration
	for i, c := range calls {
		res := answers[i].res
		resp := apiAnswer(t, res)
		switch {
		case res.ColdStart:
			cold = res.Latency
		case c.status != http.StatusOK:
			noCall = append(noCall, res.Latency)
		default:
			latencies = append(latencies, res.Latency)
		}
		if l := outcomeLine(res, "trigger", "http_api"); l == nil || l.String("requestId") != res.RequestID {
			t.Errorf("HTTP call %d: no outcome line of the HTTP API trigger for request %s: %v", i, res.RequestID, res.Logs)
		}
		if resp.StatusCode != c.status {
			t.Errorf("HTTP call %d: status %d %s, want %d", i, resp.StatusCode, resp.Body, c.status)
			continue
		}
		if c.status != http.StatusOK {
			var e apiError
			if err := strictJSON([]byte(resp.Body), &e); err != nil || e.Error.Code != c.code {
				t.Errorf("HTTP call %d: body %s, want the error object with code %s (%v)", i, resp.Body, c.code, err)
			}
			if c.status == http.StatusMethodNotAllowed && header(resp.Headers, "Allow") != "POST" {
				t.Errorf("HTTP call %d: 405 with Allow %q, want POST", i, header(resp.Headers, "Allow"))
			}
			continue
		}
		var got success
		if err := strictJSON([]byte(resp.Body), &got); err != nil {
			t.Errorf("HTTP call %d: body %s: %v", i, resp.Body, err)
			continue
		}
		switch {
		case c.stored && (got.Outcome != "deleted" || got.Code != 0 || got.RequestID != zegoAnswer[c.conv] || got.RequestID == ""):
			t.Errorf("HTTP call %d: %s, want deleted with the RequestId %q ZEGO answered", i, resp.Body, zegoAnswer[c.conv])
		case !c.stored && (got.Outcome != "already_deleted" || got.Code != codeConversationNotFound):
			t.Errorf("HTTP call %d: %s, want already_deleted (%d)", i, resp.Body, codeConversationNotFound)
		}
	}

	// The two overlapped: the queue function kept deleting while the HTTP
	// calls ran, and the backlog was not yet drained when the last answered.
	if queueDuring == 0 {
		t.Errorf("no queue deletion reached ZEGO between the first HTTP call and the last answer: nothing overlapped")
	}
	if during.Visible+during.InFlight == 0 {
		t.Errorf("the backlog was drained before the last HTTP call answered (%+v): the calls did not run beside it", during)
	}

	// Every message received once, succeeded the first time, nothing lost.
	receives := q.Receives()
	for i, id := range ids {
		if receives[id] != 1 {
			t.Errorf("message %d (%s) received %d times, want once", i, id, receives[id])
		}
	}
	if len(receives) != len(ids) {
		t.Errorf("the poller delivered %d distinct messages, %d were sent", len(receives), len(ids))
	}
	batches := q.Batches()
	var drained time.Time
	for _, b := range batches {
		if b.WholeBatch != "" || b.Err != nil || len(b.Failed) != 0 {
			t.Errorf("batch on %s: failed %v, whole batch %q, error %v", b.Function, b.Failed, b.WholeBatch, b.Err)
		}
		if end := b.Start.Add(b.Result.Latency); end.After(drained) {
			drained = end
		}
	}
	for _, cv := range convs {
		if n := deleted[queueUser][cv]; n != 1 {
			t.Errorf("queue: conversation %s deleted %d times, want once", cv.ConvID, n)
		}
	}
	for _, cv := range seed {
		if n := deleted[httpUser][cv]; n != 1 {
			t.Errorf("HTTP: conversation %s deleted %d times, want once", cv.ConvID, n)
		}
	}
	for _, user := range []string{queueUser, httpUser} {
		left, err := w.admin.Conversations(t.Context(), w.app, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("%d of %s's conversations left, want none: %v", len(left), user, left)
		}
	}

	// ZEGO's windows held at most the budget.
	most, at := maxWindow(reqs)
	if most > zegoBudget {
		t.Errorf("the ZIM server saw %d DeleteConv calls in the second before %s, over the budget of %d", most, at.Format(time.StampMilli), zegoBudget)
	}
	if throttled != 0 {
		t.Errorf("the ZIM server refused %d calls for the AppId's rate limit (%d)", throttled, codeAppIDRateLimited)
	}

	slices.Sort(latencies)
	drain := drained.Sub(sent)
	httpSpan := httpEnd.Sub(httpStart)
	sizes := 0
	for _, b := range batches {
		sizes += len(b.Messages)
	}
	t.Logf("topology: %d api and %d queue instances sharing %d/s through table %s", len(s.APIFunctions()), len(s.QueueFunctions()), s.RateBudget(), s.StateTableName())
	t.Logf("backlog: %d messages drained in %v (%.1f messages/s), %d batches (%.1f messages each); when the last HTTP call answered %d were still visible and %d in flight",
		backlog, drain.Round(time.Millisecond), float64(backlog)/drain.Seconds(), len(batches), float64(sizes)/float64(len(batches)), during.Visible, during.InFlight)
	t.Logf("HTTP: %d calls in %v beside the backlog, cold start %v; %d warm deletions p50 %v, p99 %v, max %v; 405 and 400 (no ZEGO call) %v; %d queue deletions reached ZEGO meanwhile (%.1f/s)",
		len(calls), httpSpan.Round(time.Millisecond), cold.Round(time.Millisecond), len(latencies), percentile(latencies, 50).Round(time.Millisecond),
		percentile(latencies, 99).Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond), noCall,
		queueDuring, float64(queueDuring)/httpSpan.Seconds())
	t.Logf("ZEGO: %d DeleteConv calls, most in a one-second window %d (budget %d), throttled %d", len(reqs), most, zegoBudget, throttled)
}
