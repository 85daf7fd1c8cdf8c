package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
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
