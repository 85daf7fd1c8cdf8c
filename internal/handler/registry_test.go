package handler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/registry"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// withRegistry keeps jobs in an in-memory registry, keyed by the harness's
// credentials (AppId testAppID).
func withRegistry(s registry.Store) harnessOpt {
	return func(c *harnessConfig) {
		c.handlerOpts = append(c.handlerOpts, WithRegistry(registry.New(s), staticAppID{}))
	}
}

// staticAppID is the harness's credentials, as the registry's keys need them.
type staticAppID struct{}

func (staticAppID) Credentials(context.Context) (zim.Credentials, error) {
	return zim.Credentials{AppID: testAppID, ServerSecret: testSecret}, nil
}

// failingStore is a table that does not answer.
type failingStore struct{ registry.Store }

var errTableDown = errors.New("operation error DynamoDB: UpdateItem, https response error StatusCode: 500, RequestID: X")

func (failingStore) Claim(context.Context, registry.Owner, time.Time, time.Time) (registry.Owner, error) {
	return registry.Owner{}, errTableDown
}
func (failingStore) Advance(context.Context, registry.Owner, time.Time) (registry.Owner, error) {
	return registry.Owner{}, errTableDown
}
func (failingStore) Status(context.Context, string) (registry.Status, error) {
	return registry.Status{}, errTableDown
}

// getJobs is GET path over HTTP API 2.0, as the caller with claims (nil: no JWT).
func getJobs(t *testing.T, hs *harness, path string, claims map[string]string) apiAnswer {
	t.Helper()
	p, q, _ := strings.Cut(path, "?")
	ev := sample(t, "apigw-http.json")
	rc := ev["requestContext"].(map[string]any)
	rc["http"].(map[string]any)["method"] = http.MethodGet
	rc["http"].(map[string]any)["path"] = p
	route := p
	if id, ok := strings.CutPrefix(p, "/conversations/jobs/"); ok {
		route = "/conversations/jobs/{jobId}"
		ev["pathParameters"] = map[string]any{"jobId": id}
	}
	rc["routeKey"], ev["routeKey"] = "GET "+route, "GET "+route
	ev["rawPath"], ev["rawQueryString"], ev["body"] = p, q, ""
	delete(ev, "queryStringParameters")
	if k, v, ok := strings.Cut(q, "="); ok {
		ev["queryStringParameters"] = map[string]any{k: v}
	}
	if claims != nil {
		rc["authorizer"] = map[string]any{"jwt": map[string]any{"claims": claims, "scopes": nil}}
	}
	out, err := hs.invoke(mustJSON(t, ev), 5*time.Second)
	return decodeHTTPAPI(t, out, err)
}

func postAll(t *testing.T, hs *harness, claims map[string]string) apiAnswer {
	t.Helper()
	out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: allBody, claims: claims}), 10*time.Second)
	return decodeHTTPAPI(t, out, err)
}

// TestHTTPJobJoinsAndAnswersItsStatus: a second AllConversations request for
// a user whose job runs joins it (202, the same job and Location, no call to
// ZEGO); the Location answers the running job with growing counts, and the
// user's latest job once it is complete.
func TestHTTPJobJoinsAndAnswersItsStatus(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := &memQueue{}
		hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue), withRegistry(registry.NewMemory()))
		seedMany(hs, 500)
		first := postAll(t, hs, nil)
		jobID, _ := first.body["JobId"].(string)
		loc := first.headers["Location"]
		if first.status != http.StatusAccepted || loc != "/conversations/jobs/"+jobID || len(jobID) != 32 {
			t.Fatalf("first: %d %v %v", first.status, first.headers, first.body)
		}
		st := getJobs(t, hs, loc, nil)
		if st.status != http.StatusOK || st.body["State"] != "running" || st.body["Deleted"] != first.body["Deleted"] || st.body["Rounds"] != float64(1) ||
			st.body["CompletedAt"] != nil || st.body["FromUserId"] != "erin" {
			t.Fatalf("status of the running job: %d %v", st.status, st.body)
		}

		calls := len(hs.srv.Requests())
		second := postAll(t, hs, nil)
		if second.status != http.StatusAccepted || second.body["JobId"] != jobID || second.headers["Location"] != loc ||
			second.body["Outcome"] != "accepted" || second.body["Deleted"] != first.body["Deleted"] {
			t.Fatalf("second: %d %v %v", second.status, second.headers, second.body)
		}
		if len(hs.srv.Requests()) != calls {
			t.Errorf("the joined request called ZEGO")
		}
		if sent := q.take(); len(sent) != 1 {
			t.Fatalf("%d continuations sent, want 1 (one chain)", len(sent))
		} else {
			// The queue runs the rest.
			for rec := (sqsRecord{id: "m-2", body: sent[0].Body}); ; {
				out, err := hs.invoke(sqsEvent(t, rec), 10*time.Second)
				if got := decodeSQS(t, out, err); len(got) != 0 {
					t.Fatalf("batchItemFailures %v", got)
				}
				if mid := getJobs(t, hs, loc, nil); mid.body["Deleted"].(float64) <= first.body["Deleted"].(float64) {
					t.Fatalf("the counts did not grow: %v", mid.body)
				}
				next := q.take()
				if len(next) == 0 {
					break
				}
				rec = sqsRecord{id: "m-x", body: next[0].Body}
			}
		}
		latest := getJobs(t, hs, "/conversations/jobs?FromUserId=erin", nil)
		if latest.status != http.StatusOK || latest.body["JobId"] != jobID || latest.body["State"] != "complete" || latest.body["Deleted"] != float64(500) ||
			latest.body["CompletedAt"] == nil {
			t.Fatalf("latest: %d %v", latest.status, latest.body)
		}
		// Complete: a new request starts a new job.
		seedMany(hs, 3)
		third := postAll(t, hs, nil)
		if third.status != http.StatusOK || third.body["JobId"] == jobID || third.body["Deleted"] != float64(3) {
			t.Fatalf("third: %d %v", third.status, third.body)
		}
	})
}

// TestSQSDuplicateMessagesRunOneChain: the same AllConversations message
// twice in a batch, then its continuation delivered twice: one chain, no
// conversation deleted twice, every record succeeds, and the duplicate says
// why it stopped in one line.
func TestSQSDuplicateMessagesRunOneChain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := &memQueue{}
		hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue), withRegistry(registry.NewMemory()))
		seedMany(hs, 500)
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "a", body: allBody}, sqsRecord{id: "b", body: allBody}), 10*time.Second)
		if got := decodeSQS(t, out, err); len(got) != 0 {
			t.Fatalf("batchItemFailures %v", got)
		}
		sent := q.take()
		if len(sent) != 1 {
			t.Fatalf("%d continuations, want 1", len(sent))
		}
		// The continuation twice (SQS delivered it twice, or its send was retried).
		out, err = hs.invoke(sqsEvent(t, sqsRecord{id: "c1", body: sent[0].Body}, sqsRecord{id: "c2", body: sent[0].Body}), 10*time.Second)
		if got := decodeSQS(t, out, err); len(got) != 0 {
			t.Fatalf("batchItemFailures %v", got)
		}
		stopped := 0
		for _, l := range hs.logs.lines(t) {
			if l["msg"] == "continuation stopped: not this round's owner" && strings.Contains(l["reason"].(string), "duplicate") {
				stopped++
			}
		}
		if stopped != 1 {
			t.Errorf("%d 'continuation stopped' lines, want 1", stopped)
		}
		for next := q.take(); len(next) > 0; next = q.take() {
			if len(next) != 1 {
				t.Fatalf("%d continuations at once", len(next))
			}
			out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "n", body: next[0].Body}), 10*time.Second)
			if got := decodeSQS(t, out, err); len(got) != 0 {
				t.Fatalf("batchItemFailures %v", got)
			}
		}
		if all, gone := deleteCalls(hs.srv); all != 500 || gone != 0 || len(hs.srv.Conversations(testAppID, "erin")) != 0 {
			t.Errorf("%d DeleteConv calls, %d for conversations already gone, %d left; want 500, 0, 0", all, gone, len(hs.srv.Conversations(testAppID, "erin")))
		}
	})
}

func TestJobStatusRoutes(t *testing.T) {
	t.Parallel()
	store := registry.NewMemory()
	hs := newHarness(t, withRegistry(store), withCallerClaim("sub"))
	seedMany(hs, 3)
	done := postAll(t, hs, map[string]string{"sub": "erin"})
	jobID, _ := done.body["JobId"].(string)
	if done.status != http.StatusOK {
		t.Fatalf("job: %d %v", done.status, done.body)
	}
	erin, mallory := map[string]string{"sub": "erin"}, map[string]string{"sub": "mallory"}
	tests := []struct {
		name   string
		path   string
		claims map[string]string
		status int
		code   string
		msg    string
	}{
		{"own job by id", "/conversations/jobs/" + jobID, erin, 200, "", ""},
		{"own latest job", "/conversations/jobs?FromUserId=erin", erin, 200, "", ""},
		{"another user's job by id", "/conversations/jobs/" + jobID, mallory, 403, "Forbidden", "another user's"},
		{"another user's latest job", "/conversations/jobs?FromUserId=erin", mallory, 403, "Forbidden", "caller's own"},
		{"no claim", "/conversations/jobs?FromUserId=erin", map[string]string{}, 403, "Forbidden", "no JWT claim"},
		{"unknown job", "/conversations/jobs/0123456789abcdef0123456789abcdef", erin, 404, "NotFound", "no job 0123456789abcdef0123456789abcdef"},
		{"user without a job", "/conversations/jobs?FromUserId=mallory", mallory, 404, "NotFound", "has no job"},
		{"malformed id", "/conversations/jobs/xyz", erin, 400, "InvalidRequest", "jobId must be 32 lowercase"},
		{"no FromUserId", "/conversations/jobs", erin, 400, "InvalidRequest", "FromUserId is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := getJobs(t, hs, tt.path, tt.claims)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %v", a.status, tt.status, a.body)
			}
			if tt.code == "" {
				if a.body["JobId"] != jobID || a.body["State"] != "complete" || a.body["Deleted"] != float64(3) || a.body["Rounds"] != float64(1) {
					t.Fatalf("body %v", a.body)
				}
				return
			}
			e, _ := a.body["error"].(map[string]any)
			if e["code"] != tt.code || !strings.Contains(e["message"].(string), tt.msg) {
				t.Fatalf("error %v, want code %s and a message with %q", e, tt.code, tt.msg)
			}
		})
	}

	// Another method on a status route: 405 with Allow: GET.
	out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/jobs", body: "{}"}), 5*time.Second)
	if a := decodeHTTPAPI(t, out, err); a.status != 405 || a.headers["Allow"] != "GET" {
		t.Errorf("POST on the jobs route: %d %v", a.status, a.headers)
	}
	// REST API (1.0) with a base path: the same answer.
	ev := sample(t, "apigw-rest.json")
	ev["httpMethod"], ev["path"], ev["resource"] = "GET", "/prod/conversations/jobs/"+jobID, "/conversations/jobs/{jobId}"
	ev["pathParameters"], ev["body"] = map[string]any{"jobId": jobID}, nil
	ev["requestContext"].(map[string]any)["authorizer"] = map[string]any{"claims": erin}
	out, err = hs.invoke(mustJSON(t, ev), 5*time.Second)
	if a := decodeREST(t, out, err); a.status != 200 || a.body["JobId"] != jobID {
		t.Errorf("REST: %d %v", a.status, a.body)
	}
}

func TestJobStatusWithoutTable(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	a := getJobs(t, hs, "/conversations/jobs?FromUserId=erin", nil)
	if e, _ := a.body["error"].(map[string]any); a.status != 404 || e["code"] != "NotFound" || !strings.Contains(e["message"].(string), "ZEGO_STATE_TABLE") {
		t.Fatalf("%d %v", a.status, a.body)
	}
	_, err := hs.invoke([]byte(`{"JobId":"0123456789abcdef0123456789abcdef"}`), 5*time.Second)
	if ie := functionError(t, err); ie.Type != "NotFound" || !strings.Contains(ie.Message, "ZEGO_STATE_TABLE") {
		t.Fatalf("direct: %+v", ie)
	}
	// Jobs run as before.
	seedMany(hs, 2)
	if s := directJob(t, hs, 10*time.Second); s.Deleted != 2 || !s.Complete {
		t.Fatalf("job without the table: %+v", s)
	}
}

func TestDirectJobStatus(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, withRegistry(registry.NewMemory()))
	seedMany(hs, 4)
	s := directJob(t, hs, 10*time.Second)
	for _, in := range []string{`{"JobId":"` + s.JobID + `"}`, `{"FromUserId":"erin","JobStatus":true}`} {
		out, err := hs.invoke([]byte(in), 5*time.Second)
		var st registry.Status
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		mustUnmarshal(t, out, &st)
		if st.JobID != s.JobID || st.State != registry.Complete || st.Deleted != 4 || st.CompletedAt == nil {
			t.Errorf("%s: %+v", in, st)
		}
	}
	_, err := hs.invoke([]byte(`{"FromUserId":"nobody","JobStatus":true}`), 5*time.Second)
	if ie := functionError(t, err); ie.Type != "NotFound" {
		t.Errorf("unknown user: %+v", ie)
	}
	_, err = hs.invoke([]byte(`{"JobId":"nope"}`), 5*time.Second)
	if ie := functionError(t, err); ie.Type != "InvalidRequest" || !strings.HasPrefix(ie.Message, "JobId ") {
		t.Errorf("malformed id: %+v", ie)
	}
}

// TestRegistryDownLosesNoJob: when the table does not answer, no round runs
// (it could run twice): HTTP answers 503 with Retry-After, direct invoke
// Unavailable, an SQS record fails so that the queue delivers it again.
func TestRegistryDownLosesNoJob(t *testing.T) {
	t.Parallel()
	q := &memQueue{}
	hs := newHarness(t, withQueue(q, jobQueue), withRegistry(failingStore{registry.NewMemory()}))
	seedMany(hs, 5)
	if a := postAll(t, hs, nil); a.status != 503 || a.headers["Retry-After"] == "" || strings.Contains(fmt.Sprint(a.body), "DynamoDB") {
		t.Errorf("HTTP: %d %v %v", a.status, a.headers, a.body)
	}
	_, err := hs.invoke([]byte(allBody), 5*time.Second)
	if ie := functionError(t, err); ie.Type != "Unavailable" {
		t.Errorf("direct: %+v", ie)
	}
	out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "r", body: allBody}), 5*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"r"}) {
		t.Errorf("SQS: batchItemFailures %v", got)
	}
	if len(hs.srv.Requests()) != 0 || len(q.take()) != 0 {
		t.Errorf("a round ran without the registry")
	}
	if a := getJobs(t, hs, "/conversations/jobs/0123456789abcdef0123456789abcdef", nil); a.status != 503 || strings.Contains(fmt.Sprint(a.body), "DynamoDB") {
		t.Errorf("status: %d %v", a.status, a.body)
	}
}

// TestHTTPRefusesContinuation: only the function writes a continuation.
func TestHTTPRefusesContinuation(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, withRegistry(registry.NewMemory()))
	body := `{"FromUserId":"erin","AllConversations":true,"Continuation":{"JobId":"0123456789abcdef0123456789abcdef","Round":2,"Deleted":0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05Z"}}`
	out, err := hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: body}), 5*time.Second)
	a := decodeHTTPAPI(t, out, err)
	if e, _ := a.body["error"].(map[string]any); a.status != 400 || e["field"] != "Continuation" {
		t.Fatalf("%d %v", a.status, a.body)
	}
}

// TestStatusSampleEvents: events/job-status.json (direct) and
// events/apigw-http-job-status.json (HTTP API GET) answer erin's latest job,
// and 404 / NotFound without the table.
func TestStatusSampleEvents(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile("../../events/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	direct, get := read("job-status.json"), read("apigw-http-job-status.json")

	hs := newHarness(t, withRegistry(registry.NewMemory()))
	seedMany(hs, 2)
	s := directJob(t, hs, 10*time.Second)
	out, err := hs.invoke(direct, 5*time.Second)
	var st registry.Status
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, out, &st)
	if st.JobID != s.JobID || st.State != registry.Complete {
		t.Errorf("direct: %+v", st)
	}
	out, err = hs.invoke(get, 5*time.Second)
	if a := decodeHTTPAPI(t, out, err); a.status != 200 || a.body["JobId"] != s.JobID {
		t.Errorf("HTTP API: %d %v", a.status, a.body)
	}

	bare := newHarness(t)
	if _, err := bare.invoke(direct, 5*time.Second); functionError(t, err).Type != "NotFound" {
		t.Errorf("direct without the table: %v", err)
	}
	out, err = bare.invoke(get, 5*time.Second)
	if a := decodeHTTPAPI(t, out, err); a.status != 404 {
		t.Errorf("HTTP API without the table: %d %v", a.status, a.body)
	}
}

// lostAnswerQueue takes the first message but answers with an error, as a
// SendMessage that timed out after SQS took it; then it works.
type lostAnswerQueue struct {
	memQueue
	lost bool
}

func (q *lostAnswerQueue) Send(ctx context.Context, m job.Message) error {
	err := q.memQueue.Send(ctx, m)
	if !q.lost {
		q.lost = true
		return errors.New("operation error SQS: SendMessage, exceeded maximum number of attempts, 3, context deadline exceeded")
	}
	return err
}

// TestSQSContinuationSendTimedOut: a continuation SQS took though its send
// failed, and the record that sent it delivered again: the job still runs
// one round at a time, deletes everything and calls ZEGO once per
// conversation.
func TestSQSContinuationSendTimedOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		q := &lostAnswerQueue{}
		hs := newHarness(t, inProcess(), withRate(20), withQueue(q, jobQueue), withRegistry(registry.NewMemory()))
		seedMany(hs, 500)
		type delivery struct {
			rec   sqsRecord
			again bool // delivered again after its visibility timeout
		}
		pending := []delivery{{rec: sqsRecord{id: "a", body: allBody}}}
		waits := 0
		for i := 0; len(pending) > 0; i++ {
			if i > 20 {
				t.Fatalf("the job did not end: %d records pending", len(pending))
			}
			d := pending[0]
			pending = pending[1:]
			if d.again {
				time.Sleep(time.Minute)
			}
			rec := d.rec
			out, err := hs.invoke(sqsEvent(t, rec), 10*time.Second)
			for k, m := range q.take() {
				pending = append(pending, delivery{rec: sqsRecord{id: fmt.Sprintf("%s/%d", rec.id, k), body: m.Body}})
			}
			if failed := decodeSQS(t, out, err); len(failed) > 0 {
				pending = append(pending, delivery{rec: rec, again: true})
			}
		}
		for _, l := range hs.logs.lines(t) {
			if l["msg"] == "continuation waits: the round before has not ended" {
				waits++
			}
		}
		if waits != 1 {
			t.Errorf("%d continuations waited, want 1 (round 2 while round 1 was open again)", waits)
		}
		if all, gone := deleteCalls(hs.srv); all != 500 || gone != 0 || len(hs.srv.Conversations(testAppID, "erin")) != 0 {
			t.Errorf("%d DeleteConv calls, %d for conversations already gone, %d left; want 500, 0, 0", all, gone, len(hs.srv.Conversations(testAppID, "erin")))
		}
		st, err := hs.h.registry.Latest(t.Context(), testAppID, "erin")
		if err != nil || st.State != registry.Complete || st.Deleted != 500 {
			t.Errorf("status %+v, %v", st, err)
		}
	})
}
