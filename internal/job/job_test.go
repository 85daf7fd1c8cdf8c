package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func requestAll(user string) request.Request { return request.Request{FromUserID: user, All: true} }

// panicOn panics when asked to delete one conversation, as a bug in a dependency would.
type panicOn struct {
	ZIM
	convID string
}

func (p panicOn) DeleteConversation(ctx context.Context, req zim.DeleteConvRequest) (*zim.Response, error) {
	if req.ConvID == p.convID {
		panic("nil map write")
	}
	return p.ZIM.DeleteConversation(ctx, req)
}

// TestRunDeletesEverything: past the 1000 one listing shows, in one run, with
// one summary line for the job and one count per conversation.
func TestRunDeletesEverything(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1000)
		f.seed("erin", 1100)
		f.srv.Seed(testAppID, "frank", zim.Conversation{ConvID: "erin"})
		r := f.job().Run(t.Context(), all("erin"))

		s := r.Summary
		if r.Outcome != outcome.Deleted || r.Err != nil || r.Next != nil || !s.Complete || s.Deleted != 1100 || s.Round != 1 || len(s.JobID) != 32 {
			t.Fatalf("result %+v, summary %+v", r, s)
		}
		if f.left("erin") != 0 || f.left("frank") != 1 {
			t.Errorf("left: erin %d, frank %d", f.left("erin"), f.left("frank"))
		}
		if f.counts.get(outcome.Deleted) != 1100 {
			t.Errorf("counted %v, want 1100 deleted", f.counts.n)
		}
		done := f.lines(t, "job complete")
		if len(done) != 1 || done[0]["jobId"] != s.JobID || done[0]["rounds"] != float64(1) || done[0]["deleted"] != float64(1100) ||
			done[0]["durationMs"] == nil || done[0]["fromUserId"] != "erin" {
			t.Errorf("summary lines %v", done)
		}
	})
}

// TestRunFailuresDoNotStopTheOthers: a failing conversation and a panicking
// one are reported, the rest deleted, and the job goes on to a later round
// that tries the two again.
func TestRunFailuresDoNotStopTheOthers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1000)
		f.seed("erin", 1100)
		f.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "p00007", Code: 660500002})
		j := f.job()
		j.ZIM = panicOn{ZIM: f.client, convID: "p00042"}
		j.Recovered = func(p any) error { return fmt.Errorf("recovered: %v", p) }
		r := j.Run(t.Context(), all("erin"))

		s := r.Summary
		if s.Deleted != 1098 || s.Failed != 2 || s.Complete || r.Outcome == outcome.Deleted {
			t.Fatalf("result %+v, summary %+v", r, s)
		}
		if r.Next == nil || r.Next.Round != 2 || r.Next.JobID != s.JobID || r.Next.Deleted != 1098 {
			t.Fatalf("next %+v, want round 2 with the totals: failures with progress leave work for a later round", r.Next)
		}
		if f.counts.get(outcome.UpstreamError) != 1 || f.counts.get(outcome.InternalError) != 1 || f.counts.get(outcome.Deleted) != 1098 {
			t.Errorf("counted %v", f.counts.n)
		}
		notDeleted := map[string]any{}
		for _, l := range f.lines(t, "conversation not deleted") {
			if l["jobId"] != s.JobID || l["round"] != float64(1) {
				t.Errorf("line without the job id and round: %v", l)
			}
			notDeleted[l["convId"].(string)] = l["outcome"]
		}
		if len(notDeleted) != 2 || notDeleted["p00007"] != "upstream_error" || notDeleted["p00042"] != "internal_error" {
			t.Errorf("not deleted: %v", notDeleted)
		}

		// The next round retries both (the fault is spent; the panic is not).
		r = j.Run(t.Context(), Params{Request: request.Request{FromUserID: "erin", All: true, Continuation: r.Next}})
		if r.Summary.Deleted != 1099 || r.Summary.Failed != 1 || r.Summary.Round != 2 || r.Summary.JobID != s.JobID {
			t.Fatalf("round 2: %+v", r.Summary)
		}
	})
}

// TestRunPermanentFailureIsUpstreamError (issue 12 item 8): ZEGO refusing a
// conversation it listed (660000002), or a listed ConvType outside {0, 2},
// is a partial failure of a valid job, not the caller's invalid request.
func TestRunPermanentFailureIsUpstreamError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1000)
		f.seed("erin", 10)
		f.srv.Seed(testAppID, "erin", zim.Conversation{ConvID: "refused", ConvType: zim.ConvTypePeer}, zim.Conversation{ConvID: "room", ConvType: 1})
		f.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "refused", Code: 660000002, Times: 100})
		r := f.job().Run(t.Context(), all("erin"))

		if r.Outcome != outcome.UpstreamError || r.Summary.Outcome != outcome.UpstreamError || r.Summary.Failed != 2 || r.Summary.Deleted != 10 {
			t.Fatalf("result %+v, summary %+v", r, r.Summary)
		}
		msg := r.Err.Error()
		if !strings.Contains(msg, "refused") || !strings.Contains(msg, "room") {
			t.Errorf("error %q does not name the failed ConvIds", msg)
		}
		if f.counts.get(outcome.UpstreamError) != 2 || f.counts.get(outcome.InvalidRequest) != 0 {
			t.Errorf("counted %v, want 2 upstream errors", f.counts.n)
		}
		for _, q := range f.srv.Requests() {
			if q.ConvID == "room" {
				t.Errorf("ConvType 1 was sent to ZEGO: %v", q)
			}
		}
	})
}

// TestRunListsAgainAfterAFailedListing: a listing that fails (a 200 that is
// not JSON, final for the client) is tried again after a pause, so one odd
// answer does not end a run without progress, which would cost a queued job
// a whole visibility timeout. A listing that keeps failing ends the run after
// maxListFailures calls.
func TestRunListsAgainAfterAFailedListing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fails int
	}{
		{"once", 1},
		{"every time", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, 1000)
				f.seed("erin", 30)
				f.srv.Inject(zimtest.Fault{Action: "QueryConversationList", Body: "<html>502 Bad Gateway</html>", Times: tc.fails})
				start := time.Now()
				r := f.job().Run(deadline(t, 10*time.Second), all("erin"))

				if tc.fails == 1 {
					if r.Outcome != outcome.Deleted || !r.Summary.Complete || r.Summary.Deleted != 30 || r.Resp != nil || r.Err != nil {
						t.Fatalf("result %+v, summary %+v", r, r.Summary)
					}
					var served []string
					for _, q := range f.srv.Requests() {
						if q.Action == "QueryConversationList" {
							served = append(served, q.Fault)
						}
					}
					if len(served) < 2 || served[0] == "" || served[1] != "" || time.Since(start) < listRetryPause {
						t.Errorf("listings answered by faults %q in %v, want the failed one, then another after %v", served, time.Since(start), listRetryPause)
					}
					return
				}
				if r.Outcome != outcome.UpstreamError || r.Next != nil || r.Resp == nil || f.left("erin") != 30 {
					t.Fatalf("result %+v, summary %+v", r, r.Summary)
				}
				if lists := f.calls("QueryConversationList"); lists != maxListFailures || f.counts.get(outcome.UpstreamError) != maxListFailures {
					t.Errorf("%d listings, counted %v; want %d failed listings", lists, f.counts.n, maxListFailures)
				}
			})
		})
	}
}

// rotateAfterList rotates the server's secret once the first listing is back:
// every deletion after it fails with an invalid signature.
type rotateAfterList struct {
	ZIM
	srv *zimtest.Server
}

func (r rotateAfterList) QueryConversationList(ctx context.Context, user string, limit int, next int64) (*zim.ConversationList, error) {
	l, err := r.ZIM.QueryConversationList(ctx, user, limit, next)
	r.srv.SetSecret(testAppID, rotatedKey)
	return l, err
}

// TestRunStopsAtASystemicFailure: a wrong secret stops the run after its
// first failures (the calls already in flight), not after 500.
func TestRunStopsAtASystemicFailure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1000)
		f.seed("erin", 500)
		j := f.job()
		j.ZIM = rotateAfterList{ZIM: f.client, srv: f.srv}
		r := j.Run(t.Context(), all("erin"))

		if r.Outcome != outcome.ConfigurationError || r.Next != nil || !errors.Is(r.Err, zim.ErrSignatureInvalid) {
			t.Fatalf("result %+v", r)
		}
		if n := f.calls("DeleteConv"); n == 0 || n > j.Workers {
			t.Fatalf("%d DeleteConv calls after the secret went wrong, want at most the %d in flight", n, j.Workers)
		}
	})
}

// TestRunStuckJobStopsAfterBoundedFailures: a job whose every conversation
// fails permanently sends a bounded number of calls per run and does not go
// on (no progress), so the queue's redrive policy ends it.
func TestRunStuckJobStopsAfterBoundedFailures(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1000)
		f.seed("erin", 1000)
		f.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660500002, Times: 1_000_000})
		j := f.job()
		for run := range 3 { // as the queue would deliver it again
			f.srv.ResetRequests()
			before := len(f.lines(t, "conversation not deleted"))
			r := j.Run(t.Context(), all("erin"))
			if r.Outcome != outcome.UpstreamError || r.Next != nil || r.Summary.Failed < maxFailuresWithoutProgress {
				t.Fatalf("run %d: result %+v, summary %+v", run, r, r.Summary)
			}
			if n := f.calls("DeleteConv"); n > maxFailuresWithoutProgress+j.Workers {
				t.Fatalf("run %d: %d DeleteConv calls, want at most %d", run, n, maxFailuresWithoutProgress+j.Workers)
			}
			if len(r.Summary.FailedConvIDs) != maxFailedConvIDs || !strings.Contains(r.Err.Error(), fmt.Sprintf("and %d more", r.Summary.Failed-maxFailedConvIDs)) {
				t.Fatalf("run %d: %d FailedConvIds, error %q", run, len(r.Summary.FailedConvIDs), r.Err)
			}
			// Each failed conversation is logged, the first maxFailedConvIDs at info.
			lines, info := f.lines(t, "conversation not deleted")[before:], 0
			for _, l := range lines {
				if l["level"] == "INFO" {
					info++
				}
			}
			if len(lines) != r.Summary.Failed || info != maxFailedConvIDs {
				t.Fatalf("run %d: %d failed, %d lines of them, %d at info, want every one and %d at info", run, r.Summary.Failed, len(lines), info, maxFailedConvIDs)
			}
		}
	})
}

// TestRunContinuesAcrossRounds: a job bigger than one run stops dispatching
// shortly before each deadline, hands its totals on, keeps its job id, and
// sums up once, at the end.
func TestRunContinuesAcrossRounds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 20)
		f.seed("erin", 700)
		j := f.job()
		p := all("erin")
		var jobID string
		rounds := 0
		for {
			rounds++
			start := time.Now()
			ctx := deadline(t, 10*time.Second)
			f.srv.ResetRequests()
			r := j.Run(ctx, p)
			took := time.Since(start)
			t.Logf("round %d: %v (virtual), %s, deleted %d in all", rounds, took, r.Outcome, r.Summary.Deleted)
			if jobID == "" {
				jobID = r.Summary.JobID
			}
			if r.Summary.JobID != jobID || r.Summary.Round != rounds {
				t.Fatalf("round %d: summary %+v, want job %s round %d", rounds, r.Summary, jobID, rounds)
			}
			if r.Next == nil {
				if r.Outcome != outcome.Deleted || r.Summary.Deleted != 700 {
					t.Fatalf("round %d: %+v %+v", rounds, r, r.Summary)
				}
				break
			}
			// Virtual time: the reserve of a 10 s run is 200 ms; calls in flight get half.
			if r.Outcome != outcome.Timeout || took >= 10*time.Second-minReserve/2 || took < 10*time.Second-minReserve-time.Second {
				t.Fatalf("round %d: outcome %s after %v", rounds, r.Outcome, took)
			}
			var last time.Time
			for _, q := range f.srv.Requests() {
				last = q.Time
			}
			if stop := start.Add(10*time.Second - minReserve); last.After(stop.Add(minReserve / 2)) {
				t.Errorf("round %d: a call started %v after the dispatch deadline", rounds, last.Sub(stop))
			}
			if r.Next.Round != rounds+1 || r.Next.Deleted != r.Summary.Deleted || r.Next.JobID != jobID {
				t.Fatalf("round %d: next %+v after %+v", rounds, r.Next, r.Summary)
			}
			p = Params{Request: request.Request{FromUserID: "erin", All: true, Continuation: r.Next}}
		}
		if rounds != 4 || f.left("erin") != 0 {
			t.Fatalf("%d rounds, %d left; want 700 deleted in 4 rounds of about 190", rounds, f.left("erin"))
		}
		done := f.lines(t, "job complete")
		if len(done) != 1 || done[0]["rounds"] != float64(4) || done[0]["deleted"] != float64(700) || done[0]["jobId"] != jobID {
			t.Errorf("summary lines %v", done)
		}
	})
}

// TestRunRoundCap: the last round allowed ends the job with work left; it is
// logged at error level and sends nothing on.
func TestRunRoundCap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 20)
		f.seed("erin", 100)
		j := f.job()
		next := func(round int) Params {
			return Params{Request: request.Request{FromUserID: "erin", All: true, Continuation: &request.Continuation{
				JobID: "0123456789abcdef0123456789abcdef", Round: round, Deleted: 5, StartedAt: time.Now().Add(-time.Hour)}}}
		}
		r := j.Run(deadline(t, 2*time.Second), next(request.MaxRounds-1))
		if r.Next == nil || r.Next.Round != request.MaxRounds {
			t.Fatalf("round %d: next %+v", request.MaxRounds-1, r.Next)
		}
		r = j.Run(deadline(t, 2*time.Second), next(request.MaxRounds))
		if r.Next != nil || r.Outcome != outcome.Timeout || !errors.Is(r.Err, ErrRoundCap) || r.Summary.Deleted <= 5 {
			t.Fatalf("round %d: %+v %+v", request.MaxRounds, r, r.Summary)
		}
		capped := f.lines(t, "job stopped at its round cap")
		if len(capped) != 1 || capped[0]["level"] != "ERROR" || capped[0]["jobId"] != "0123456789abcdef0123456789abcdef" ||
			capped[0]["round"] != float64(request.MaxRounds) {
			t.Errorf("round cap lines %v", capped)
		}
	})
}

// TestRunWithoutProgress: a run that deletes nothing before its deadline (no
// rate-limit slot for a deletion) yields no continuation, and counts one
// timeout.
func TestRunWithoutProgress(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 0.1) // the listing takes the one slot of the next 10 s
		f.seed("erin", 10)
		r := f.job().Run(deadline(t, 2*time.Second), all("erin"))
		if r.Outcome != outcome.Timeout || r.Next != nil || r.Summary.Deleted != 0 || r.Summary.Complete {
			t.Fatalf("result %+v, summary %+v", r, r.Summary)
		}
		if f.counts.get(outcome.Timeout) != 1 {
			t.Errorf("counted %v, want one timeout", f.counts.n)
		}
	})
}

// TestRunBudget: with a budget, a run stops dispatching once the budget has
// passed and it has made progress; without progress it keeps going.
func TestRunBudget(t *testing.T) {
	t.Parallel()
	t.Run("progress", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t, 20)
			f.seed("erin", 500)
			start := time.Now()
			r := f.job().Run(deadline(t, 30*time.Second), Params{Request: requestAll("erin"), Budget: 3 * time.Second})
			if took := time.Since(start); took > 3500*time.Millisecond || r.Next == nil || r.Outcome != outcome.Timeout {
				t.Fatalf("after %v: %+v", took, r)
			}
			if d := r.Summary.Deleted; d < 50 || d > 62 {
				t.Errorf("deleted %d in a 3 s budget at 20/s", d)
			}
		})
	})
	t.Run("none before the budget", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t, 20)
			f.seed("erin", 500)
			f.srv.Inject(zimtest.Fault{Action: "DeleteConv", Delay: 4 * time.Second, Times: 4})
			start := time.Now()
			r := f.job().Run(deadline(t, 30*time.Second), Params{Request: requestAll("erin"), Budget: 3 * time.Second})
			if took := time.Since(start); took < 4*time.Second || took > 4500*time.Millisecond || r.Next == nil || r.Summary.Deleted < 1 {
				t.Fatalf("after %v: %+v %+v; want a stop soon after the first deletions at 4 s", took, r, r.Summary)
			}
		})
	})
}

// TestRunTotalsCarryOver: a continuation's counts and start time carry over
// into the summary and the job's duration.
func TestRunTotalsCarryOver(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 1000)
		f.seed("erin", 30)
		c := &request.Continuation{JobID: "00000000000000000000000000000abc", Round: 7, Deleted: 1200, AlreadyDeleted: 4,
			StartedAt: time.Now().Add(-time.Hour).UTC()}
		r := f.job().Run(t.Context(), Params{Request: request.Request{FromUserID: "erin", All: true, Continuation: c}})
		s := r.Summary
		if s.JobID != c.JobID || s.Round != 7 || s.Deleted != 1230 || s.AlreadyDeleted != 4 || !s.Complete {
			t.Fatalf("summary %+v", s)
		}
		done := f.lines(t, "job complete")
		if len(done) != 1 || done[0]["rounds"] != float64(7) || done[0]["deleted"] != float64(1230) || done[0]["durationMs"].(float64) < 3600000 {
			t.Errorf("summary lines %v", done)
		}
	})
}
