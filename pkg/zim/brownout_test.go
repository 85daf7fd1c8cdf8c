package zim_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// memTransport hands requests to a handler in memory: no sockets, so it runs
// inside a testing/synctest bubble.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, req)
	req.Body.Close()
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// brownOut is what one run of the brown-out workload saw.
type brownOut struct {
	healthyDeleted int           // healthy conversations deleted
	failedFast     int           // browned-out conversations that ended with ErrTemporary
	requests       int           // requests ZEGO received
	toBrownedOut   int           // of which for browned-out conversations
	elapsed        time.Duration // fake time the workload took
}

// runBrownOut deletes n of alice's conversations with a few workers sharing one
// Client at the default rate, while ZEGO answers 660000001 (temporary) to every
// DeleteConv of each odd-numbered one, for as long as the run lasts.
func runBrownOut(t *testing.T, n, workers int, policy zim.RetryPolicy) brownOut {
	t.Helper()
	var out brownOut
	synctest.Test(t, func(t *testing.T) {
		srv := zimtest.NewUnstartedServer(zimtest.WithApp(appID, secret))
		defer srv.Close()
		convs := make([]zim.Conversation, n)
		brownedOut := map[string]bool{}
		for i := range convs {
			convs[i] = zim.Conversation{ConvID: fmt.Sprintf("conv-%03d", i), ConvType: zim.ConvTypePeer}
			if i%2 == 1 {
				brownedOut[convs[i].ConvID] = true
				srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: convs[i].ConvID, Code: 660000001, Times: 1 << 30})
			}
		}
		srv.Seed(appID, "alice", convs...)
		c, err := zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: secret},
			zim.WithHTTPClient(&http.Client{Transport: memTransport{srv}}), zim.WithRetry(policy))
		if err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		work := make(chan zim.Conversation)
		var deleted, failed atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for conv := range work {
					req := zim.DeleteConvRequest{FromUserID: "alice", ConvID: conv.ConvID, ConvType: conv.ConvType}
					_, err := c.DeleteConversation(t.Context(), req)
					switch {
					case err == nil && !brownedOut[conv.ConvID]:
						deleted.Add(1)
					case errors.Is(err, zim.ErrTemporary) && brownedOut[conv.ConvID]:
						failed.Add(1)
					default:
						t.Errorf("%s: err = %v", conv.ConvID, err)
					}
				}
			})
		}
		for _, conv := range convs {
			work <- conv
		}
		close(work)
		wg.Wait()

		out.elapsed = time.Since(start)
		out.healthyDeleted, out.failedFast = int(deleted.Load()), int(failed.Load())
		for _, r := range srv.Requests() {
			out.requests++
			if brownedOut[r.ConvID] {
				out.toBrownedOut++
			}
			if zim.ClassOf(r.Code) == zim.ErrRateLimited {
				t.Errorf("ZEGO rate-limited %s: the workload must stay within its limit", r)
			}
		}
		if left := srv.Conversations(appID, "alice"); len(left) != n/2 {
			t.Errorf("%d conversations left, want the %d browned-out ones", len(left), n/2)
		}
	})
	return out
}

// TestRetryBudgetBrownOut: with ZEGO failing half of the conversations for good,
// the retry budget keeps their retries to a small share of the rate-limit slots,
// so the healthy half is deleted at close to its share of the rate. Without a
// budget (the control) each failing conversation takes MaxAttempts slots.
func TestRetryBudgetBrownOut(t *testing.T) {
	t.Parallel()
	const n, workers = 200, 4
	noBudget := zim.DefaultRetryPolicy
	noBudget.RetryBudget, noBudget.RetryBudgetRatio = 0, 0

	// With no retries at all, the healthy half would get half of the requests.
	budgeted := runBrownOut(t, n, workers, zim.DefaultRetryPolicy)
	control := runBrownOut(t, n, workers, noBudget)
	for _, r := range []struct {
		name string
		run  brownOut
	}{{"default budget", budgeted}, {"no budget", control}} {
		t.Logf("%s: %d healthy deleted, %d failed, %d requests (%d to browned-out conversations): "+
			"healthy deletions %.1f%% of requests; %.2f healthy deletions/s over %v of fake time",
			r.name, r.run.healthyDeleted, r.run.failedFast, r.run.requests, r.run.toBrownedOut,
			100*float64(r.run.healthyDeleted)/float64(r.run.requests),
			float64(r.run.healthyDeleted)/r.run.elapsed.Seconds(), r.run.elapsed)
		if r.run.healthyDeleted != n/2 || r.run.failedFast != n/2 {
			t.Errorf("%s: %d deleted and %d failed, want %d each", r.name, r.run.healthyDeleted, r.run.failedFast, n/2)
		}
	}

	// The budget allows its 10 tokens plus 0.1 per healthy answer: at most
	// n/2 + 10 + n/20 requests to browned-out conversations, so the healthy
	// half gets at least 100 of 220 requests.
	p := zim.DefaultRetryPolicy
	if limit := n/2 + p.RetryBudget + int(p.RetryBudgetRatio*n/2); budgeted.toBrownedOut > limit {
		t.Errorf("with the budget, %d requests to browned-out conversations, want at most %d", budgeted.toBrownedOut, limit)
	}
	if share := float64(budgeted.healthyDeleted) / float64(budgeted.requests); share < 0.45 {
		t.Errorf("with the budget, healthy deletions are %.1f%% of requests, want at least 45%% (50%% without retries)", 100*share)
	}
	// The control shows the workload is a brown-out that retries would take over.
	if want := n / 2 * zim.DefaultRetryPolicy.MaxAttempts; control.toBrownedOut != want {
		t.Errorf("without a budget, %d requests to browned-out conversations, want %d (MaxAttempts each)", control.toBrownedOut, want)
	}
}
