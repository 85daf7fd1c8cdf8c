package job

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// TestRunEndsWhileConversationsKeepArriving: a user who gets 2 new
// conversations per second during the job. The job deletes every
// conversation it started with, then ends (it does not chase the new ones
// round after round) and says how many newer ones it left.
func TestRunEndsWhileConversationsKeepArriving(t *testing.T) {
	t.Parallel()
	for _, n := range []int{600, 1500} { // 1500: ZEGO hides the oldest 500 at first
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, 20)
				originals := make([]zim.Conversation, n)
				for i := range originals {
					originals[i] = zim.Conversation{ConvID: fmt.Sprintf("old%05d", i)} // UpdateTime: the server's clock
				}
				f.srv.Seed(testAppID, "bot", originals...)
				time.Sleep(time.Second)

				// 2 new conversations per second, from the job's start until the test ends.
				ctx, stop := context.WithCancel(t.Context())
				arrived := make(chan int, 1)
				go func() {
					tick := time.NewTicker(500 * time.Millisecond)
					defer tick.Stop()
					k := 0
					for {
						select {
						case <-ctx.Done():
							arrived <- k
							return
						case now := <-tick.C:
							f.srv.Seed(testAppID, "bot", zim.Conversation{ConvID: fmt.Sprintf("new%05d", k), UpdateTime: now.UnixMilli()})
							k++
						}
					}
				}()

				start := time.Now()
				p := all("bot")
				var r Result
				rounds := 0
				for {
					rounds++
					r = f.job().Run(deadline(t, 10*time.Second), p)
					if r.Next == nil {
						break
					}
					if r.Next.Cutoff < start.UnixMilli() {
						t.Fatalf("round %d: cutoff %d is before the job's start", rounds, r.Next.Cutoff)
					}
					p.Request.Continuation = r.Next
					if rounds > 20 {
						t.Fatalf("the job is still running after %d rounds", rounds)
					}
				}
				took := time.Since(start)
				left := f.srv.Conversations(testAppID, "bot")
				stop()
				total := <-arrived

				s := r.Summary
				if r.Outcome != outcome.Deleted || !s.Complete {
					t.Fatalf("the job did not complete: %+v, %+v", r, s)
				}
				for _, c := range left {
					if c.UpdateTime <= start.UnixMilli() {
						t.Fatalf("an original conversation is left: %+v", c)
					}
				}
				// Everything the job did not delete is newer, and it says how many.
				if s.Left != len(left) || s.Left == 0 {
					t.Errorf("summary says %d left, the server holds %d", s.Left, len(left))
				}
				if s.Deleted != n+total-len(left) {
					t.Errorf("deleted %d, want the %d originals and the %d newer ones gone", s.Deleted, n, total-len(left))
				}
				// The bound: at 20/s with 2/s arriving, the originals take
				// n/18 s; the job ends on the listing after the last one went.
				if limit := time.Duration(float64(n)/18*float64(time.Second)) + 15*time.Second; took > limit {
					t.Errorf("the job took %v, more than %v", took, limit)
				}
				t.Logf("%d originals, %d arrived, %d left, %d rounds, %v", n, total, len(left), rounds, took)
			})
		})
	}
}
