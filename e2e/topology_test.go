package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// TestHTTPCallersOnTheDeployedTopology sends single deletions over HTTP the
// way callers on the internet do, through the stage's throttle to a free api
// instance: one caller per api instance, each at 2 calls per second, well
// within the stage's 20/s. Every call is answered 200 by the function and
// deletes its conversation once, both instances serve, and every instance
// that ran has the template's budget environment. The rate is logged.
func TestHTTPCallersOnTheDeployedTopology(t *testing.T) {
	t.Parallel()
	const (
		user  = "topo-http"
		calls = 16
	)
	s, _ := queueStack(t, "topology-http", devstack.QueueConfig{})
	w := newWorld(t, s)
	var events [][]byte
	var convs []zim.Conversation
	for i := range calls {
		c := peer(fmt.Sprintf("topo-%02d", i))
		convs = append(convs, c)
		events = append(events, httpAPI(t, direct(user, c.ConvID, c.ConvType)))
	}
	w.seed(user, convs...)

	answers := httpCallers(t, s, len(s.APIFunctions()), 500*time.Millisecond, events)

	served := map[string]int{}
	for i, a := range answers {
		served[a.Function]++
		if a.StatusCode != http.StatusOK || a.Throttled != "" {
			t.Errorf("call %d (caller %d): %d %s (throttled %q), want 200", i, a.caller, a.StatusCode, a.Body, a.Throttled)
		}
	}
	for _, f := range s.APIFunctions() {
		if served[f.Name] == 0 {
			t.Errorf("api instance %s served no call: %v", f.Name, served)
		}
	}
	reqs := w.zegoCalls("DeleteConv")
	deleted := map[string]int{}
	for _, r := range reqs {
		if r.Code == 0 && r.HTTPStatus == http.StatusOK {
			deleted[r.ConvID]++
		}
	}
	for _, c := range convs {
		if deleted[c.ConvID] != 1 || w.has(user, c) {
			t.Errorf("%s deleted %d times (still stored: %v), want once", c.ConvID, deleted[c.ConvID], w.has(user, c))
		}
	}
	if n := checkBudgetEnv(t, s); n != len(s.APIFunctions()) {
		t.Errorf("%d instances ran a bootstrap, want the %d api instances", n, len(s.APIFunctions()))
	}
	most, _ := maxWindow(reqs)
	if most > zegoBudget {
		t.Errorf("%d DeleteConv calls in one second, over ZEGO's %d", most, zegoBudget)
	}
	n, span, rate := deletionRate(reqs, user)
	t.Logf("%d deletions over HTTP by %d callers in %v (%.1f/s), per instance %v; ZEGO per second %v, most in a sliding second %d, per app %v",
		n, len(s.APIFunctions()), span.Round(time.Millisecond), rate, served, perSecond(reqs), most, maxWindowPerApp(reqs))
}

// TestHTTPCallersThroughATableOutage runs HTTP callers (one per api
// instance, 2 calls per second each) while the functions' DynamoDB first
// fails every call for 6 s, then answers each after 1 s for 6 s. Every call
// is answered within 5 s with 200, or 429/503 with Retry-After; every 200
// deleted its conversation; ZEGO never sees more than 20 calls in a second.
func TestHTTPCallersThroughATableOutage(t *testing.T) {
	t.Parallel()
	const (
		user   = "outage-http"
		calls  = 56 // 2 callers × 2/s × 14 s
		phase  = 6 * time.Second
		answer = 5 * time.Second
	)
	s, _ := queueStack(t, "topology-outage", devstack.QueueConfig{})
	w := newWorld(t, s)
	var events [][]byte
	var convs []zim.Conversation
	for i := range calls {
		c := peer(fmt.Sprintf("outage-%02d", i))
		convs = append(convs, c)
		events = append(events, httpAPI(t, direct(user, c.ConvID, c.ConvType)))
	}
	w.seed(user, convs...)

	done := make(chan []httpAnswer, 1)
	go func() { done <- httpCallers(t, s, len(s.APIFunctions()), 500*time.Millisecond, events) }()
	<-dynamoDBFault(t, s, netem.Fail, phase)
	<-dynamoDBFault(t, s, netem.Slow, phase)
	answers := <-done

	status := map[int]int{}
	for i, a := range answers {
		status[a.StatusCode]++
		switch a.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if a.Throttled != "" || header(a.Headers, "Retry-After") == "" {
				t.Errorf("call %d: %d %s (throttled %q), want the function's answer with Retry-After", i, a.StatusCode, a.Body, a.Throttled)
			}
		default:
			t.Errorf("call %d: %d %s, want 200, 429 or 503", i, a.StatusCode, a.Body)
		}
		if a.Latency > answer {
			t.Errorf("call %d answered in %v, over %v", i, a.Latency.Round(time.Millisecond), answer)
		}
	}
	reqs := w.zegoCalls()
	deleted := map[string]bool{}
	for _, r := range reqs {
		if r.Action == "DeleteConv" && r.Code == 0 && r.HTTPStatus == http.StatusOK {
			deleted[r.ConvID] = true
		}
	}
	for i, a := range answers {
		if a.StatusCode == http.StatusOK && (!deleted[convs[i].ConvID] || w.has(user, convs[i])) {
			t.Errorf("call %d answered 200 but %s was not deleted", i, convs[i].ConvID)
		}
	}
	most, at := maxWindow(reqs)
	if most > zegoBudget {
		t.Errorf("%d ZEGO calls in the second before %s, over %d", most, at.Format(time.StampMilli), zegoBudget)
	}
	total, faulted := s.DynamoDBRequests()
	t.Logf("answers by status %v; ZEGO per second %v (most in a sliding second %d); DynamoDB requests %d, %d of them failed or slowed",
		status, perSecond(reqs), most, total, faulted)
}
