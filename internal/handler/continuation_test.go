package handler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const (
	standardQueue = "https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv-queue" // events/sqs.json's eventSourceARN
	fifoQueueURL  = "https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv.fifo"  // sqsEvent's with a group
	jobQueue      = "http://127.0.0.1:4566/123456789012/zim-deleteconv-jobs"                // ZEGO_JOB_QUEUE_URL
)

// TestSQSJobContinuesThroughItsQueue: a job bigger than one run sends itself
// on to the queue its record came from and reports the record succeeded; fed
// back, the rounds finish the job under one job id, with one summary line.
func TestSQSJobContinuesThroughItsQueue(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{false, true} {
		t.Run(map[bool]string{false: "standard", true: "fifo"}[fifo], func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				q := &memQueue{}
				hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue))
				seedMany(hs, 500)
				rec := sqsRecord{id: "m-1", body: allBody}
				if fifo {
					rec.group = "tenant-7"
				}
				var jobID string
				rounds := 0
				for {
					rounds++
					start := time.Now()
					out, err := hs.invoke(sqsEvent(t, rec), 10*time.Second)
					if time.Since(start) >= 10*time.Second {
						t.Fatalf("round %d: the handler answered after the deadline", rounds)
					}
					if got := decodeSQS(t, out, err); len(got) != 0 {
						t.Fatalf("round %d: batchItemFailures = %v, want none (the job goes on or is done)", rounds, got)
					}
					sent := q.take()
					if len(sent) == 0 {
						break
					}
					m := sent[0]
					c := continuation(t, m).Continuation
					if jobID == "" {
						jobID = c.JobID
					}
					wantURL, wantGroup, wantDedup := standardQueue, "", ""
					if fifo {
						wantURL, wantGroup, wantDedup = fifoQueueURL, "tenant-7", fmt.Sprintf("%s-%d", jobID, rounds+1)
					}
					if len(sent) != 1 || m.QueueURL != wantURL || m.GroupID != wantGroup || m.DeduplicationID != wantDedup ||
						c.JobID != jobID || c.Round != rounds+1 || c.Deleted != 500-len(hs.srv.Conversations(testAppID, "erin")) {
						t.Fatalf("round %d sent %+v (%+v)", rounds, sent, c)
					}
					rec.id, rec.body = fmt.Sprintf("m-%d", rounds+1), m.Body
				}
				if rounds != 3 || len(hs.srv.Conversations(testAppID, "erin")) != 0 {
					t.Fatalf("%d rounds, %d left; want 500 deleted in 3 rounds", rounds, len(hs.srv.Conversations(testAppID, "erin")))
				}
				lines := hs.outcomeLines()
				for i, l := range lines {
					want := "accepted"
					if i == len(lines)-1 {
						want = "deleted"
					}
					if l["outcome"] != want || l["jobId"] != jobID || l["round"] != float64(i+1) || l["messageId"] != fmt.Sprintf("m-%d", i+1) {
						t.Errorf("outcome line %d: %v", i, l)
					}
				}
				var done []map[string]any
				for _, l := range hs.logs.lines(t) {
					if l["msg"] == "job complete" {
						done = append(done, l)
					}
				}
				if len(done) != 1 || done[0]["jobId"] != jobID || done[0]["rounds"] != float64(3) || done[0]["deleted"] != float64(500) {
					t.Errorf("job complete lines %v", done)
				}
				if all, gone := deleteCalls(hs.srv); all != 500 || gone != 0 {
					t.Errorf("%d DeleteConv calls, %d for conversations already gone; want 500 and 0", all, gone)
				}
			})
		})
	}
}

// TestSQSJobWithoutProgressFails: a run that deletes nothing reports its
// record failed and sends nothing, so a stuck job reaches the dead-letter
// queue after MaxReceiveCount; every conversation failing permanently costs a
// bounded number of calls per run.
func TestSQSJobWithoutProgressFails(t *testing.T) {
	t.Parallel()
	q := &memQueue{}
	hs := newHarness(t, withQueue(q, jobQueue))
	seedMany(hs, 1000)
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 660500002, Times: 1_000_000})
	for run := range 2 {
		hs.srv.ResetRequests()
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "stuck", body: allBody}), 10*time.Second)
		if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"stuck"}) {
			t.Fatalf("run %d: batchItemFailures = %v, want the stuck job's record", run, got)
		}
		if all, _ := deleteCalls(hs.srv); all > 110 {
			t.Errorf("run %d: %d DeleteConv calls for a job whose every conversation fails", run, all)
		}
	}
	if sent := q.take(); len(sent) != 0 {
		t.Fatalf("a job without progress was sent on: %v", sent)
	}
	for _, l := range hs.outcomeLines() {
		if l["outcome"] != "upstream_error" || l["jobId"] == nil {
			t.Errorf("outcome line %v", l)
		}
	}
}

// rotateAfterFirstList lists through the real client, then rotates the
// server's secret, as a wrong secret in Secrets Manager after a rotation at
// ZEGO would: every deletion fails with an invalid signature.
type rotateAfterFirstList struct {
	ZIM
	srv *zimtest.Server
}

func (r rotateAfterFirstList) QueryConversationList(ctx context.Context, user string, limit int, next int64) (*zim.ConversationList, error) {
	l, err := r.ZIM.QueryConversationList(ctx, user, limit, next)
	r.srv.SetSecret(testAppID, rotatedKey)
	return l, err
}

// TestSQSJobWrongSecretStopsAtFirstFailure: a systemic failure ends the run
// at once (the calls already in flight), fails the record and sends nothing.
func TestSQSJobWrongSecretStopsAtFirstFailure(t *testing.T) {
	t.Parallel()
	q := &memQueue{}
	hs := newHarness(t, withQueue(q, jobQueue))
	seedMany(hs, 500)
	hs.h.zim = rotateAfterFirstList{ZIM: hs.h.zim, srv: hs.srv}
	out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "job", body: allBody}), 10*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"job"}) {
		t.Fatalf("batchItemFailures = %v", got)
	}
	if all, _ := deleteCalls(hs.srv); all == 0 || all > hs.h.jobWorkers {
		t.Fatalf("%d DeleteConv calls with a wrong secret, want at most the %d in flight", all, hs.h.jobWorkers)
	}
	if sent := q.take(); len(sent) != 0 {
		t.Fatalf("sent on after a systemic failure: %v", sent)
	}
	if l := hs.outcomeLines(); len(l) != 1 || l[0]["outcome"] != "configuration_error" || l[0]["level"] != "ERROR" {
		t.Errorf("outcome lines %v", l)
	}
}

// TestSQSJobSendFails: when the continuation cannot be sent, the record is
// reported failed (the queue delivers it again), and the caller-facing error
// holds none of the SDK's text.
func TestSQSJobSendFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := &memQueue{err: errors.New("operation error SQS: SendMessage, https response error StatusCode: 403, AccessDenied: arn:aws:iam::123456789012:role/x")}
		hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue))
		seedMany(hs, 500)
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "job", body: allBody}), 10*time.Second)
		if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"job"}) {
			t.Fatalf("batchItemFailures = %v", got)
		}
		lines := hs.outcomeLines()
		if len(lines) != 1 || lines[0]["outcome"] != "unavailable" || strings.Contains(fmt.Sprint(lines[0]["error"]), "AccessDenied") {
			t.Fatalf("outcome lines %v", lines)
		}
		logged := false
		for _, l := range hs.logs.lines(t) {
			logged = logged || l["msg"] == "job not handed to its queue" && strings.Contains(fmt.Sprint(l["error"]), "AccessDenied") && l["jobId"] != nil
		}
		if !logged {
			t.Error("the send's error is not in the log")
		}
		// Direct invoke: an Unavailable function error with a generic message.
		_, err = hs.invoke([]byte(allBody), 10*time.Second)
		if ie := functionError(t, err); ie.Type != "Unavailable" || strings.Contains(ie.Message, "AccessDenied") || strings.Contains(ie.Message, "123456789012") {
			t.Errorf("direct answer %+v", ie)
		}
	})
}

// TestJobPermanentFailureIsUpstreamError (issue 12 item 8): ZEGO refusing a
// conversation it listed (660000002) makes a valid AllConversations request a
// partial upstream failure naming the ConvId, not an invalid request.
func TestJobPermanentFailureIsUpstreamError(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	seedMany(hs, 10)
	hs.seed("erin", peer("refused"))
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "refused", Code: 660000002, Times: 100})

	_, err := hs.invoke([]byte(allBody), 10*time.Second)
	if ie := functionError(t, err); ie.Type != "UpstreamError" || !strings.Contains(ie.Message, "refused") {
		t.Errorf("direct: %+v, want UpstreamError naming the ConvId", ie)
	}
	out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody}), 10*time.Second)
	a := decodeHTTPAPI(t, out, err)
	if a.status != http.StatusBadGateway || a.body["Outcome"] != "upstream_error" || a.body["Complete"] != false ||
		fmt.Sprint(a.body["FailedConvIds"]) != "[refused]" {
		t.Errorf("HTTP: %d %v, want 502 with the job's body naming the failed ConvId", a.status, a.body)
	}
	for _, l := range hs.outcomeLines() {
		if l["outcome"] != "upstream_error" {
			t.Errorf("outcome line %v", l)
		}
	}
}

// TestJobCountsConversations: EMF counts a job's conversations one by one,
// with the same Outcome metric as single deletions.
func TestJobCountsConversations(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	seedMany(hs, 30)
	hs.seed("erin", peer("broken"))
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "broken", Code: 660500002})
	hs.seed("zed", peer("a"))
	out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "job", body: allBody}, sqsRecord{id: "one", body: body("zed", "a", 0)}), 10*time.Second)
	decodeSQS(t, out, err)
	got := map[string]float64{}
	for _, l := range hs.emf.lines(t) {
		if n, ok := l["Requests"].(float64); ok {
			got[l["Outcome"].(string)] += n
		}
	}
	if got["deleted"] != 31 || got["upstream_error"] != 1 || len(got) != 2 {
		t.Errorf("EMF counts %v, want 31 deleted (30 of the job, 1 single) and 1 upstream error", got)
	}
}

// TestSQSJobRoundCap: the last round allowed with work left fails its record,
// logs the cap at error level and sends nothing on.
func TestSQSJobRoundCap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := &memQueue{}
		hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue))
		seedMany(hs, 500)
		body := string(request.ContinuationBody("erin", request.Continuation{JobID: "0123456789abcdef0123456789abcdef",
			Round: request.MaxRounds, Deleted: 7, StartedAt: time.Now().Add(-time.Hour)}))
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "last", body: body}), 10*time.Second)
		if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"last"}) {
			t.Fatalf("batchItemFailures = %v", got)
		}
		if sent := q.take(); len(sent) != 0 {
			t.Fatalf("sent on past the round cap: %v", sent)
		}
		capped := 0
		for _, l := range hs.logs.lines(t) {
			if l["msg"] == "job stopped at its round cap" && l["level"] == "ERROR" && l["jobId"] == "0123456789abcdef0123456789abcdef" {
				capped++
			}
		}
		if capped != 1 {
			t.Errorf("%d round cap lines, want 1", capped)
		}
	})
}

// TestSQSJobContinuationParsedStrictly: a record whose Continuation breaks a
// rule is an invalid request naming the field, reported failed.
func TestSQSJobContinuationParsedStrictly(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, withQueue(&memQueue{}, jobQueue))
	bad := `{"FromUserId":"erin","AllConversations":true,"Continuation":{"JobId":"0123456789abcdef0123456789abcdef","Round":0,"Deleted":0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05Z"}}`
	out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "bad", body: bad}), 5*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"bad"}) {
		t.Fatalf("batchItemFailures = %v", got)
	}
	// Only the function writes a continuation, onto its queue: a direct caller's is refused whatever it holds.
	_, err = hs.invoke([]byte(bad), 5*time.Second)
	if ie := functionError(t, err); ie.Type != "InvalidRequest" || !strings.HasPrefix(ie.Message, "Continuation is written by the function") {
		t.Errorf("direct: %+v", ie)
	}
	if len(hs.srv.Requests()) != 0 {
		t.Errorf("an invalid continuation reached ZEGO")
	}
}

// TestAPIJobHandsOffEarly: HTTP and direct invoke work on a big job for a
// short budget, then hand it to the job queue and answer accepted with the
// job id and the counts so far; a small job finishes as before.
func TestAPIJobHandsOffEarly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, queue string
		http        bool
	}{
		{"http standard queue", jobQueue, true},
		{"http fifo queue", jobQueue + ".fifo", true},
		{"direct", jobQueue, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				q := &memQueue{}
				hs := newHarness(t, inProcess(), withRate(20), withQueue(q, tt.queue))
				seedMany(hs, 1000)
				start := time.Now()
				var status int
				var ans map[string]any
				if tt.http {
					out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody}), 30*time.Second)
					a := decodeHTTPAPI(t, out, err)
					status, ans = a.status, a.body
				} else {
					out, err := hs.invoke([]byte(allBody), 30*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					mustUnmarshal(t, out, &ans)
				}
				took := time.Since(start)
				if took > apiJobBudget+500*time.Millisecond {
					t.Errorf("answered after %v (virtual), want soon after the %v budget", took, apiJobBudget)
				}
				deleted := 1000 - len(hs.srv.Conversations(testAppID, "erin"))
				if (tt.http && status != http.StatusAccepted) || ans["Outcome"] != "accepted" || ans["Complete"] != false ||
					ans["Deleted"] != float64(deleted) || ans["Round"] != float64(1) || len(fmt.Sprint(ans["JobId"])) != 32 || deleted < 40 {
					t.Fatalf("answer %d %v after %d deleted", status, ans, deleted)
				}
				sent := q.take()
				if len(sent) != 1 {
					t.Fatalf("sent %v", sent)
				}
				m, c := sent[0], continuation(t, sent[0]).Continuation
				if m.QueueURL != tt.queue || c.JobID != ans["JobId"] || c.Round != 2 || c.Deleted != deleted {
					t.Errorf("sent %+v (%+v)", m, c)
				}
				if fifo := strings.HasSuffix(tt.queue, ".fifo"); fifo != (m.GroupID == "erin") || fifo != (m.DeduplicationID == c.JobID+"-2") {
					t.Errorf("FIFO %v: group %q, deduplication id %q", fifo, m.GroupID, m.DeduplicationID)
				}
			})
		})
	}
	t.Run("small job", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			q := &memQueue{}
			hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue))
			seedMany(hs, 20)
			out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody}), 30*time.Second)
			a := decodeHTTPAPI(t, out, err)
			if a.status != http.StatusOK || a.body["Outcome"] != "deleted" || a.body["Complete"] != true || a.body["Deleted"] != float64(20) {
				t.Fatalf("got %d %v", a.status, a.body)
			}
			if sent := q.take(); len(sent) != 0 {
				t.Errorf("a finished job was sent on: %v", sent)
			}
		})
	})
	t.Run("no job queue", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			q := &memQueue{}
			hs := newHarness(t, inProcess(), withRate(20), withQueue(q, "")) // ZEGO_JOB_QUEUE_URL unset
			seedMany(hs, 1000)
			out, err := hs.invoke([]byte(allBody), 10*time.Second)
			var s map[string]any
			if err != nil {
				t.Fatal(err)
			}
			mustUnmarshal(t, out, &s)
			if s["Outcome"] != "timeout" || s["Complete"] != false || s["Deleted"].(float64) < 150 {
				t.Fatalf("got %v, want the run to the deadline with Complete false", s)
			}
			if sent := q.take(); len(sent) != 0 {
				t.Errorf("sent without a job queue: %v", sent)
			}
		})
	})
}
