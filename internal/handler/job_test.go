package handler

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const allBody = `{"FromUserId":"erin","AllConversations":true}`

// seedMany gives erin n conversations, every third one a group.
func seedMany(hs *harness, n int) {
	convs := make([]zim.Conversation, n)
	for i := range convs {
		convs[i] = peer(fmt.Sprintf("p%04d", i))
		if i%3 == 2 {
			convs[i] = group(fmt.Sprintf("#g%04d", i))
		}
		convs[i].UpdateTime = int64(1_700_000_000_000 + i)
	}
	hs.seed("erin", convs...)
}

func directJob(t *testing.T, hs *harness, timeout time.Duration) job.Summary {
	t.Helper()
	out, err := hs.invoke([]byte(allBody), timeout)
	if err != nil {
		t.Fatalf("function error: %v", err)
	}
	var s job.Summary
	mustUnmarshal(t, out, &s)
	return s
}

func TestDeleteAllConversations(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 250, 1234} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			hs := newHarness(t)
			seedMany(hs, n)
			hs.seed("frank", peer("erin")) // someone else's conversations stay
			s := directJob(t, hs, 30*time.Second)
			want := job.Summary{FromUserID: "erin", Outcome: outcome.Deleted, Complete: true, Deleted: n}
			if !equalSummary(s, want) {
				t.Fatalf("summary %+v, want %+v", s, want)
			}
			if left := hs.srv.Conversations(testAppID, "erin"); len(left) != 0 {
				t.Errorf("%d conversations left", len(left))
			}
			if len(hs.srv.Conversations(testAppID, "frank")) != 1 {
				t.Errorf("another user's conversation was touched")
			}
			groups := 0
			for _, r := range hs.srv.Requests() {
				if r.Action == "DeleteConv" && r.ConvType == zim.ConvTypeGroup {
					groups++
				}
				if r.Action == "QueryConversationList" && r.FromUserID != "erin" {
					t.Errorf("listed %q", r.FromUserID)
				}
			}
			if groups != n/3 {
				t.Errorf("%d group deletions, want %d", groups, n/3)
			}
		})
	}
}

func equalSummary(a, b job.Summary) bool {
	return a.FromUserID == b.FromUserID && a.Outcome == b.Outcome && a.Complete == b.Complete && a.Deleted == b.Deleted &&
		a.AlreadyDeleted == b.AlreadyDeleted && a.Failed == b.Failed && slices.Equal(a.FailedConvIDs, b.FailedConvIDs)
}

func TestDeleteAllFailuresDoNotStopTheOthers(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	seedMany(hs, 40)
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "p0007", Code: 660500002})
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "#g0020", Code: 660000001, Times: 3}) // transient, but past the retries
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "p0030", Code: 1})                    // transient, retried: succeeds
	out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "job-1", body: allBody}), 30*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"job-1"}) {
		t.Fatalf("batchItemFailures = %v, want the job's record", got)
	}
	left := hs.srv.Conversations(testAppID, "erin")
	var ids []string
	for _, c := range left {
		ids = append(ids, c.ConvID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"#g0020", "p0007"}) {
		t.Fatalf("left %v, want only the two failed conversations", ids)
	}
	lines := hs.outcomeLines()
	if len(lines) != 1 {
		t.Fatalf("want one outcome line, got %v", lines)
	}
	job := lines[0]["job"].(map[string]any)
	failed := fmt.Sprint(job["FailedConvIds"])
	if job["Failed"] != float64(2) || job["Deleted"] != float64(38) || !strings.Contains(failed, "p0007") || !strings.Contains(failed, "#g0020") {
		t.Errorf("job log %v", job)
	}

	// Redelivered after the faults are gone: finishes the job without redoing what is done.
	hs.srv.ResetRequests()
	out, err = hs.invoke(sqsEvent(t, sqsRecord{id: "job-1", body: allBody}), 30*time.Second)
	if got := decodeSQS(t, out, err); len(got) != 0 {
		t.Fatalf("redelivery failed: %v", got)
	}
	deletes := 0
	for _, r := range hs.srv.Requests() {
		if r.Action == "DeleteConv" {
			deletes++
		}
	}
	if deletes != 2 || len(hs.srv.Conversations(testAppID, "erin")) != 0 {
		t.Errorf("redelivery sent %d deletions, want 2", deletes)
	}
}

func TestDeleteAllDeadlineThenRedeliveryFinishes(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): the deadline, the rate
	// limiter and the slow answers are exact however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		// 40 requests/second: 100 conversations need about 2.5 s, the deadline is 1 s.
		hs := newHarness(t, inProcess(), withRate(40))
		seedMany(hs, 100)
		start := time.Now()
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "job-1", body: allBody}), time.Second)
		if time.Since(start) >= time.Second {
			t.Errorf("handler returned after the deadline")
		}
		if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"job-1"}) {
			t.Fatalf("an unfinished job must be reported failed, got %v", got)
		}
		first := 100 - len(hs.srv.Conversations(testAppID, "erin"))
		if first == 0 || first == 100 {
			t.Fatalf("first delivery deleted %d, want some but not all", first)
		}
		// A call the deadline cut in flight may have deleted at ZEGO without the
		// function seeing the answer: the count may miss those (at most one per worker).
		lines := hs.outcomeLines()
		if job := lines[0]["job"].(map[string]any); job["Complete"] != false ||
			job["Deleted"].(float64) > float64(first) || job["Deleted"].(float64) < float64(first-hs.h.jobWorkers) {
			t.Errorf("job log %v, want Complete false and Deleted %d (or up to %d fewer)", job, first, hs.h.jobWorkers)
		}

		s := directJob(t, hs, 30*time.Second)
		if !s.Complete || s.Deleted != 100-first || s.Failed != 0 || len(hs.srv.Conversations(testAppID, "erin")) != 0 {
			t.Fatalf("second run %+v after %d deleted first", s, first)
		}
		oks := 0
		for _, r := range hs.srv.Requests() {
			if r.Action == "DeleteConv" && r.Code == 0 {
				oks++
			}
		}
		if oks != 100 {
			t.Errorf("%d successful deletions in all, want exactly 100 (nothing redone)", oks)
		}
	})
}

func TestDeleteAllPartialAnswers(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): at 40/s, a 1 s
	// deadline deletes some of the 100 and never none, however loaded the
	// machine is.
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			hs := newHarness(t, inProcess(), withRate(40))
			seedMany(hs, 100)
			s := directJob(t, hs, time.Second)
			if s.Complete || s.Outcome != outcome.Timeout || s.Deleted == 0 || s.Deleted == 100 {
				t.Fatalf("summary %+v, want partial counts with Complete false", s)
			}
		})
	})
	t.Run("http_api", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			hs := newHarness(t, inProcess(), withRate(40))
			seedMany(hs, 100)
			out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody}), time.Second)
			a := decodeHTTPAPI(t, out, err)
			if a.status != http.StatusAccepted || a.body["Complete"] != false || a.body["Deleted"] == float64(0) {
				t.Fatalf("got %d %v, want 202 with progress", a.status, a.body)
			}
			out, err = hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody}), 30*time.Second)
			if a := decodeHTTPAPI(t, out, err); a.status != http.StatusOK || a.body["Complete"] != true {
				t.Fatalf("got %d %v, want 200 complete", a.status, a.body)
			}
		})
	})
}

func TestDeleteAllRespectsZEGOsRateLimit(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): the deadline, the rate
	// limiter and the slow answers are exact however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		// The real limit: 20 per second per AppId on the server, the default budget in the client.
		hs := newHarness(t, inProcess(), withRate(20), withServer(zimtest.WithRateLimit(20, time.Second)))
		seedMany(hs, 45)
		// Single deletions from the same instance share the limiter.
		hs.seed("zed", peer("a"), peer("b"))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, c := range []string{"a", "b"} {
				if _, err := hs.h.Invoke(t.Context(), []byte(body("zed", c, 0))); err != nil {
					t.Errorf("single deletion: %v", err)
				}
			}
		}()
		s := directJob(t, hs, 30*time.Second)
		<-done
		if !s.Complete || s.Deleted != 45 {
			t.Fatalf("summary %+v", s)
		}
		// The limiter spaces requests at 97% of the budget: on virtual time
		// (no network jitter) ZEGO's window is never exceeded. A limiter that
		// let even 21 per second through would be refused.
		reqs := hs.srv.Requests()
		throttled := 0
		for _, r := range reqs {
			if r.Code == 660300005 {
				throttled++
			}
		}
		if throttled != 0 {
			t.Fatalf("ZEGO's rate limit refused %d of %d requests", throttled, len(reqs))
		}
	})
}

func TestDeleteAllListingFailsAfterProgress(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	seedMany(hs, 5)
	hs.h.zim = &failLaterLists{ZIM: hs.h.zim, err: fmt.Errorf("zim: QueryConversationList: %w", zim.ErrTransport)}
	_, err := hs.invoke([]byte(allBody), 10*time.Second)
	ie := functionError(t, err)
	if ie.Type != "Unavailable" || !strings.Contains(ie.Message, "listing FromUserId's conversations failed after 5 were deleted") {
		t.Fatalf("got %+v", ie)
	}
	if job := hs.outcomeLines()[0]["job"].(map[string]any); job["Complete"] != false || job["Deleted"] != float64(5) {
		t.Errorf("job log %v", job)
	}
}

// TestJobWithoutProgressIsATimeout: a job that deletes nothing before the
// deadline has nothing to continue from. HTTP answers 504, not 202 (which
// says the job goes on), and direct invoke a Timeout function error.
func TestJobWithoutProgressIsATimeout(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): the deadline, the rate
	// limiter and the slow answers are exact however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		hs := newHarness(t, inProcess(), withRate(0.2)) // the listing takes the one slot of the next 5 s
		seedMany(hs, 10)

		_, err := hs.invoke([]byte(allBody), 2*time.Second)
		if ie := functionError(t, err); ie.Type != "Timeout" {
			t.Errorf("direct: %+v, want a Timeout function error", ie)
		}
		out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody}), 2*time.Second)
		if a := decodeHTTPAPI(t, out, err); a.status != http.StatusGatewayTimeout {
			t.Errorf("HTTP: %d %v, want 504", a.status, a.body)
		}
	})
}
