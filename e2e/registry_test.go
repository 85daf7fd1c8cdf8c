package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Issue 18's "Done when", end to end: the real bootstrap under the Lambda
// emulator in the template's topology (2 api and 2 queue instances, the
// shared table in moto with atomic conditional writes, the template's
// defaults), one stack per test.

// Log messages of the job registry (internal/handler/jobs.go).
const (
	msgJoined   = "job joined: the user's job is running"
	msgStopped  = "continuation stopped: not this round's owner"
	msgWaits    = "continuation waits: the round before has not ended"
	msgComplete = "job complete"
	msgNotSent  = "job not handed to its queue"
)

// jobStatus is the status body of the contract ("One job per user, and its
// status"), decoded strictly: a field the contract does not name fails.
type jobStatus struct {
	JobID          string     `json:"JobId"`
	FromUserID     string     `json:"FromUserId"`
	State          string     `json:"State"`
	Deleted        int        `json:"Deleted"`
	AlreadyDeleted int        `json:"AlreadyDeleted"`
	Failed         int        `json:"Failed"`
	Left           int        `json:"Left"`
	Rounds         int        `json:"Rounds"`
	StartedAt      time.Time  `json:"StartedAt"`
	UpdatedAt      time.Time  `json:"UpdatedAt"`
	CompletedAt    *time.Time `json:"CompletedAt"`
	Outcome        string     `json:"Outcome"`
	FailedConvIDs  []string   `json:"FailedConvIds"`
}

// TestRegistry runs issue 18's end-to-end tests at the same time, each on a
// stack of its own (as TestJobs does, from goroutines: they wait on the
// clock, not on the CPU).
func TestRegistry(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"SentTwice", func(t *testing.T) { testRegistrySentTwice(t, "twice", 2*time.Second) }},
		{"SentTwiceAtOnce", func(t *testing.T) { testRegistrySentTwice(t, "twice-at-once", 0) }},
		{"ContinuationDeliveredTwice", testRegistryContinuationDeliveredTwice},
		{"ContinuationSendTimedOut", testRegistryContinuationSendTimedOut},
		{"NewConversationsDuringJob", testRegistryNewConversationsDuringJob},
		{"StatusOfHTTPJob", testRegistryStatusOfHTTPJob},
		{"WithoutTable", testRegistryWithoutTable},
	} {
		wg.Go(func() { t.Run(tc.name, tc.f) })
	}
	wg.Wait()
}

// registryLogs are every JSON line the stack's functions wrote so far.
func registryLogs(s *devstack.Stack) []devstack.LogRecord {
	var out []devstack.LogRecord
	for _, f := range append(s.APIFunctions(), s.QueueFunctions()...) {
		out = append(out, f.Logs()...)
	}
	return out
}

// linesOf are the lines with message msg.
func linesOf(logs []devstack.LogRecord, msg string) []devstack.LogRecord {
	return slices.DeleteFunc(slices.Clone(logs), func(l devstack.LogRecord) bool { return l.String("msg") != msg })
}

// jobIDs are the distinct job ids the lines name.
func jobIDs(logs []devstack.LogRecord) []string {
	var ids []string
	for _, l := range logs {
		if id := l.String("jobId"); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// registryJob is what checkRegistryJob measured of one user's job.
type registryJob struct {
	jobMeasure
	jobID      string
	listings   int // the user's QueryConversationList calls
	batches    int // the queue function's invocations
	failed     int // of them, records reported failed
	stops      []devstack.LogRecord
	waits      []devstack.LogRecord
	joined     []devstack.LogRecord
	wall       time.Duration
	budgetLoad string // the ZIM server's load: most calls in a sliding second
}

// checkRegistryJob asserts what issue 18 asks of one user's job, however
// often its messages came: every conversation in convs deleted, both queues
// empty, one job (one job id in every line, one "job complete"), at most 3%
// of the user's DeleteConv calls for conversations already gone, ZEGO's 20
// calls per second kept. Records reported failed (a round that comes back by
// design) are logged.
func checkRegistryJob(t *testing.T, s *devstack.Stack, q *devstack.Queue, w *world, user string, convs []zim.Conversation, wall time.Duration) registryJob {
	t.Helper()
	c, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadLetters != 0 || c.Visible+c.InFlight+c.Delayed != 0 {
		t.Errorf("queues at the end: %+v, want both empty", c)
	}
	left, err := w.admin.Conversations(t.Context(), w.app, user)
	if err != nil {
		t.Fatal(err)
	}
	for _, cv := range convs {
		if slices.ContainsFunc(left, func(l zim.Conversation) bool { return l.ConvID == cv.ConvID && l.ConvType == cv.ConvType }) {
			t.Errorf("%s's conversation %s (there before the job) is left", user, cv.ConvID)
			break
		}
	}
	m := registryJob{jobMeasure: measureJob(t, w, q, user), wall: wall}
	if m.deleted < len(convs) {
		t.Errorf("the ZIM server deleted %d of %s's conversations, want at least the %d there before the job", m.deleted, user, len(convs))
	}
	if p := m.alreadyGonePercent(); p > 3 {
		t.Errorf("%d of the %d DeleteConv calls for %s (%.1f%%) were for conversations already gone, want at most 3%%", m.alreadyGone, m.deletes, user, p)
	}
	// The shared budget keeps ZEGO's window by construction while the
	// instances' scheduling jitter stays under ~30 ms; beyond that (a loaded
	// machine), at worst one or two extra calls in a window, which ZEGO
	// refuses and the client retries (docs of issue 17). The job's figures
	// report the window; here it must stay within that documented slack.
	if m.maxWindow > zegoBudget+2 {
		t.Errorf("%d DeleteConv calls within one second at the ZIM server, want at most %d (+2 under jitter)", m.maxWindow, zegoBudget)
	}
	reqs := w.zegoCalls("QueryConversationList")
	for _, r := range reqs {
		if r.FromUserID == user {
			m.listings++
		}
	}
	// The registry lives in the shared table: every instance that ran has
	// the template's ZEGO_STATE_TABLE (and the budget's variables).
	if checkBudgetEnv(t, s) == 0 {
		t.Error("no function instance ran a bootstrap")
	}
	logs := registryLogs(s)
	if ids := jobIDs(logs); len(ids) != 1 {
		t.Errorf("the functions' lines name jobs %v, want one job", ids)
	} else {
		m.jobID = ids[0]
	}
	if done := linesOf(logs, msgComplete); len(done) != 1 {
		t.Errorf("%d %q lines, want one: %v", len(done), msgComplete, done)
	}
	m.stops, m.waits, m.joined = linesOf(logs, msgStopped), linesOf(logs, msgWaits), linesOf(logs, msgJoined)
	for _, b := range q.Batches() {
		m.batches++
		m.failed += len(b.Failed)
		// A round cut short on a loaded machine (its continuation's send
		// timed out, or the emulator's deadline came first) is a record that
		// comes back after its backoff, by design: what the registry must
		// keep is one chain, which the counts above check. Logged, not failed.
		if b.Result.ErrorType == devstack.TimedOutErrorType || len(b.Failed) > 0 {
			t.Logf("batch on %s at %s: error type %q, whole batch %q, failed %v (retried after its backoff)",
				b.Function, b.Start.Format(time.StampMilli), b.Result.ErrorType, b.WholeBatch, b.Failed)
			continue
		}
		if b.WholeBatch != "" || b.Err != nil {
			t.Errorf("batch on %s at %s: error type %q, whole batch %q, error %v, failed %v",
				b.Function, b.Start.Format(time.StampMilli), b.Result.ErrorType, b.WholeBatch, b.Err, b.Failed)
		}
	}
	most, _ := maxWindow(w.zegoCalls())
	m.budgetLoad = fmt.Sprintf("most ZEGO calls in a sliding second %d (DeleteConv %d), %d refused by ZEGO's rate limit and retried; DeleteConv per second %v",
		most, m.maxWindow, m.throttled, perSecond(w.zegoCalls("DeleteConv")))
	if t.Failed() {
		logBatches(t, q)
	}
	return m
}

func (m registryJob) String() string {
	return fmt.Sprintf("wall %s (send to drained); %d rounds in %d deliveries of the job's messages, %d batches (%d records failed); "+
		"%d DeleteConv calls, %d deleted, %d (%.2f%%) already gone; %d listings; job rate %.2f/s (%d deleted in %s first to last); "+
		"%d stopped, %d waited, %d joined; %s",
		m.wall.Round(100*time.Millisecond), m.rounds, m.deliveries, m.batches, m.failed,
		m.deletes, m.deleted, m.alreadyGone, m.alreadyGonePercent(), m.listings, m.rate, m.deleted, m.span.Round(100*time.Millisecond),
		len(m.stops), len(m.waits), len(m.joined), m.budgetLoad)
}

// seedUser gives user n conversations (SeedConversations' names).
func seedUser(t *testing.T, s *devstack.Stack, user string, n int) []zim.Conversation {
	t.Helper()
	convs, err := s.SeedConversations(t.Context(), user, n)
	if err != nil {
		t.Fatal(err)
	}
	return convs
}

// sendOne sends one message (one SendMessageBatch call) and returns its id.
func sendOne(t *testing.T, q *devstack.Queue, body string) string {
	t.Helper()
	ids, err := q.Send(t.Context(), devstack.Message{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

// deliveredTo names the instance each message id was delivered to, in order.
func deliveredTo(q *devstack.Queue, id string) []string {
	var fns []string
	for _, b := range q.Batches() {
		for _, d := range b.Messages {
			if d.MessageID == id {
				fns = append(fns, b.Function)
			}
		}
	}
	return fns
}

// directStatus asks for user's latest job by direct invoke.
func directStatus(t *testing.T, s *devstack.Stack, user string) jobStatus {
	t.Helper()
	res := invoke(t, s, fmt.Appendf(nil, `{"FromUserId": %q, "JobStatus": true}`, user))
	if res.FunctionError {
		t.Fatalf("status of %s's job: function error %s: %s", user, res.ErrorType, res.ErrorMessage)
	}
	var st jobStatus
	if err := strictJSON(res.Body, &st); err != nil {
		t.Fatalf("status %s: %v", res.Body, err)
	}
	return st
}

// checkComplete asserts a complete job's status against the job's figures.
func checkComplete(t *testing.T, st jobStatus, user string, m registryJob) {
	t.Helper()
	if st.State != "complete" || st.FromUserID != user || st.JobID != m.jobID || st.CompletedAt == nil ||
		st.Deleted != m.deleted || st.AlreadyDeleted != m.alreadyGone || st.Failed != 0 || st.Rounds != m.rounds {
		t.Errorf("status %+v; want complete, job %s, %d deleted, %d already deleted, %d rounds", st, m.jobID, m.deleted, m.alreadyGone, m.rounds)
	}
}

// testRegistrySentTwice: the same AllConversations message sent twice (two
// SendMessage calls, gap apart: 2 s, as a producer's retry after a timeout,
// so that the other queue instance takes it while the first is busy; or
// back to back, so that both arrive in one batch or in both instances at
// once) for a user with 600 conversations. The second joins the first's job:
// every conversation deleted once, nothing in the dead-letter queue, at most
// 3% of the DeleteConv calls for conversations already gone.
func testRegistrySentTwice(t *testing.T, user string, gap time.Duration) {
	const n = 600
	s, q := queueStack(t, "registry-"+user, devstack.QueueConfig{})
	w := newWorld(t, s)
	convs := seedUser(t, s, user, n)
	body := allConversations(user)
	start := time.Now()
	first := sendOne(t, q, body)
	time.Sleep(gap)
	second := sendOne(t, q, body)
	waitDrained(t, q, 4*time.Minute)
	m := checkRegistryJob(t, s, q, w, user, convs, time.Since(start))

	if len(m.joined) != 1 || m.joined[0].String("jobId") != m.jobID || m.joined[0].String("fromUserId") != user {
		t.Errorf("%q lines %v, want one naming job %s", msgJoined, m.joined, m.jobID)
	}
	if m.deleted != n {
		t.Errorf("%d deletions, want %d", m.deleted, n)
	}
	checkComplete(t, directStatus(t, s, user), user, m)
	t.Logf("FIGURES sent twice %v apart (%d conversations): first delivered to %v, second to %v; %v", gap, n, deliveredTo(q, first), deliveredTo(q, second), m)
}

// testRegistryContinuationDeliveredTwice: a copy of a job's round-2
// continuation is sent again once round 2 ran (SQS's at-least-once
// delivery): the copy stops by itself with one line, and the job runs once.
func testRegistryContinuationDeliveredTwice(t *testing.T) {
	const user, n = "dup-round", 1200
	s, q := queueStack(t, "registry-dup-round", devstack.QueueConfig{})
	w := newWorld(t, s)
	convs := seedUser(t, s, user, n)
	start := time.Now()
	sendOne(t, q, allConversations(user))

	// Round 2's message, once its invocation ended.
	var round2 string
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for round2 == "" {
		for _, b := range q.Batches() {
			for _, d := range b.Messages {
				if c := continuationOf(d.Body); c != nil && c.Round == 2 {
					round2 = d.Body
				}
			}
		}
		if round2 != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("round 2 did not run")
		case <-time.After(200 * time.Millisecond):
		}
	}
	copyID := sendOne(t, q, round2)
	waitDrained(t, q, 4*time.Minute)
	m := checkRegistryJob(t, s, q, w, user, convs, time.Since(start))

	if len(deliveredTo(q, copyID)) == 0 {
		t.Error("the copy of round 2 was never delivered")
	}
	if len(m.stops) != 1 || m.stops[0].String("jobId") != m.jobID {
		t.Errorf("%q lines %v, want one, of job %s", msgStopped, m.stops, m.jobID)
	} else if r, _ := m.stops[0].Number("round"); r != 2 {
		t.Errorf("the stopped continuation was round %v, want 2", r)
	}
	if m.deleted != n {
		t.Errorf("%d deletions, want %d", m.deleted, n)
	}
	checkComplete(t, directStatus(t, s, user), user, m)
	reason := ""
	if len(m.stops) > 0 {
		reason = m.stops[0].String("reason")
	}
	t.Logf("FIGURES continuation delivered twice (%d conversations): the copy stopped (%q); %v", n, reason, m)
}

// sqsHold is a reverse proxy in front of moto's SQS for the queue
// function: it forwards every request, and withholds the answer to the first
// SendMessage of a continuation once moto took it, until the caller gives up
// (its context's deadline): a send that timed out after SQS took the message.
type sqsHold struct {
	srv      *httptest.Server
	target   atomic.Pointer[url.URL]
	armed    atomic.Bool
	withheld atomic.Value // the body moto took and the function never heard of
}

func newSQSHold(t *testing.T) *sqsHold {
	h := &sqsHold{}
	h.armed.Store(true)
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *sqsHold) serve(w http.ResponseWriter, r *http.Request) {
	target := h.target.Load()
	body, err := io.ReadAll(r.Body)
	if target == nil || err != nil {
		http.Error(w, "no target", http.StatusServiceUnavailable)
		return
	}
	out, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, target.JoinPath(r.URL.Path).String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.URL.RawQuery = r.URL.RawQuery
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if r.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessage" && bytes.Contains(body, []byte(`Continuation`)) &&
		resp.StatusCode == http.StatusOK && h.armed.CompareAndSwap(true, false) {
		var in struct{ MessageBody string }
		_ = json.Unmarshal(body, &in)
		h.withheld.Store(in.MessageBody)
		select {
		case <-r.Context().Done(): // the sender gave up: the answer is lost
			return
		case <-time.After(30 * time.Second):
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// testRegistryContinuationSendTimedOut: round 1's SendMessage of its
// continuation times out after moto took the message (the proxy withholds
// the answer). The round reopens and its record fails, so SQS has round 1
// again and round 2 too: one of them runs, the other stops, and the job
// runs once. The queue function's records back off from 10 s (the
// template's BackoffBase parameter; 60 s by default) to keep the test short.
func testRegistryContinuationSendTimedOut(t *testing.T) {
	const user, n = "send-timeout", 600
	hold := newSQSHold(t)
	s, q := queueStack(t, "registry-send-timeout", devstack.QueueConfig{Function: devstack.FunctionConfig{
		Env: []string{"AWS_ENDPOINT_URL_SQS=" + hold.srv.URL, "ZEGO_BACKOFF_BASE=10s"},
	}})
	target, err := url.Parse(s.SecretsManagerURL()) // moto serves SQS too
	if err != nil {
		t.Fatal(err)
	}
	hold.target.Store(target)
	w := newWorld(t, s)
	convs := seedUser(t, s, user, n)
	start := time.Now()
	first := sendOne(t, q, allConversations(user))
	waitDrained(t, q, 4*time.Minute)
	m := checkRegistryJob(t, s, q, w, user, convs, time.Since(start))

	withheld, _ := hold.withheld.Load().(string)
	if withheld == "" {
		t.Fatal("no continuation's SendMessage was held: the test did not run its case")
	}
	delivered := 0
	for _, b := range q.Batches() {
		for _, d := range b.Messages {
			if d.Body == withheld {
				delivered++
			}
		}
	}
	notSent := linesOf(registryLogs(s), msgNotSent)
	// One line for the held send at least (a loaded moto can make another
	// send time out on its own; the registry handles it the same way).
	if delivered == 0 || len(notSent) == 0 {
		t.Errorf("the continuation whose send timed out was delivered %d times, %d %q lines; want delivered, and the line", delivered, len(notSent), msgNotSent)
	}
	if len(deliveredTo(q, first)) < 2 {
		t.Errorf("the job's first message was delivered %d times, want again after its round's send failed", len(deliveredTo(q, first)))
	}
	if len(m.stops) == 0 {
		t.Errorf("no %q line: one of the two copies of the job's round must stop", msgStopped)
	}
	if m.deleted != n {
		t.Errorf("%d deletions, want %d", m.deleted, n)
	}
	checkComplete(t, directStatus(t, s, user), user, m)
	var reasons []string
	for _, l := range append(m.stops, m.waits...) {
		reasons = append(reasons, fmt.Sprintf("%s round %v: %s", l.String("msg"), l["round"], l.String("reason")))
	}
	t.Logf("FIGURES continuation send timed out (%d conversations): first message delivered %d times, the held continuation %d times; %v; %v",
		n, len(deliveredTo(q, first)), delivered, reasons, m)
}

// testRegistryNewConversationsDuringJob: a user with 600 conversations gets
// 2 new ones per second (one every 500 ms through the ZIM admin API) from
// the job's start until the queue drains. The job ends; every conversation
// there before it started is deleted; and it ends within README's bound: at
// most one listing pass after its last original conversation went, the
// newer conversations that pass showed left and counted in the status's Left.
func testRegistryNewConversationsDuringJob(t *testing.T) {
	const user, n = "busy-bot", 600
	s, q := queueStack(t, "registry-arrivals", devstack.QueueConfig{})
	w := newWorld(t, s)
	convs := seedUser(t, s, user, n)
	start := time.Now()
	sendOne(t, q, allConversations(user))

	stop := make(chan struct{})
	var seeded atomic.Int64
	var seeder sync.WaitGroup
	seeder.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.Context().Done():
				return
			case <-tick.C:
			}
			if err := w.admin.Seed(t.Context(), w.app, user, peer(fmt.Sprintf("new-%05d", i))); err != nil {
				t.Errorf("seeding: %v", err)
				return
			}
			seeded.Add(1)
		}
	})
	waitDrained(t, q, 4*time.Minute)
	wall := time.Since(start)
	close(stop)
	seeder.Wait()
	m := checkRegistryJob(t, s, q, w, user, convs, wall)

	done := linesOf(registryLogs(s), msgComplete)
	if len(done) != 1 {
		t.FailNow()
	}
	logLeft, _ := done[0].Number("left")
	st := directStatus(t, s, user)
	checkComplete(t, st, user, m)
	if st.Left != int(logLeft) {
		t.Errorf("status Left %d, the %q line's left %v", st.Left, msgComplete, logLeft)
	}

	// The bound: after the last original conversation went, at most one
	// listing pass (up to 3 pages of 500), then the job ended.
	original := map[string]bool{}
	for _, c := range convs {
		original[c.ConvID] = true
	}
	reqs := w.zegoCalls()
	var lastOriginal, lastListing time.Time
	for _, r := range reqs {
		if r.FromUserID != user {
			continue
		}
		if r.Action == "DeleteConv" && original[r.ConvID] && r.Time.After(lastOriginal) {
			lastOriginal = r.Time
		}
		if r.Action == "QueryConversationList" && r.Time.After(lastListing) {
			lastListing = r.Time
		}
	}
	after, newerDeleted := 0, 0
	for _, r := range reqs {
		if r.FromUserID != user {
			continue
		}
		if r.Action == "QueryConversationList" && r.Time.After(lastOriginal) {
			after++
		}
		if r.Action == "DeleteConv" && !original[r.ConvID] && r.Code == 0 {
			newerDeleted++
			if r.Time.After(lastListing) {
				t.Errorf("%s (newer) deleted at %s, after the job's last listing at %s", r.ConvID, r.Time.Format(time.StampMilli), lastListing.Format(time.StampMilli))
			}
		}
	}
	if after < 1 || after > 3 {
		t.Errorf("%d listings after the last original conversation went, want one pass (1 to 3 pages)", after)
	}
	// What the final listing showed is what the job left: the newer
	// conversations stored then (the server's UpdateTime is its clock).
	stored, err := w.admin.Conversations(t.Context(), w.app, user)
	if err != nil {
		t.Fatal(err)
	}
	leftThen := 0
	for _, c := range stored {
		if c.UpdateTime <= lastListing.UnixMilli() {
			leftThen++
		}
	}
	if d := leftThen - st.Left; d < -1 || d > 1 {
		t.Errorf("%d conversations were stored at the job's last listing and are left, the status says Left %d", leftThen, st.Left)
	}
	t.Logf("FIGURES new conversations during the job (%d + 2/s): %d arrived while the test ran, %d of them deleted by the job, Left %d; "+
		"job end %s after its last original deletion, %d listing(s) after it; status rounds %d; %v",
		n, seeded.Load(), newerDeleted, st.Left, lastListing.Sub(lastOriginal).Round(10*time.Millisecond), after, st.Rounds, m)
}

// jobStatusEvent is events/apigw-http-job-status.json asking for location
// (a 202's Location, "/conversations/jobs/<id>"), or for user's latest job
// when location is "".
func jobStatusEvent(t *testing.T, location, user string) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(sample(t, "apigw-http-job-status.json"), &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev["requestContext"].(map[string]any)
	h := rc["http"].(map[string]any)
	if location != "" {
		id, ok := strings.CutPrefix(location, "/conversations/jobs/")
		if !ok {
			t.Fatalf("Location %q is not /conversations/jobs/{jobId}", location)
		}
		route := "GET /conversations/jobs/{jobId}"
		ev["routeKey"], rc["routeKey"] = route, route
		ev["rawPath"], h["path"] = location, location
		ev["pathParameters"] = map[string]any{"jobId": id}
		ev["rawQueryString"] = ""
		delete(ev, "queryStringParameters")
	} else {
		ev["rawQueryString"] = "FromUserId=" + url.QueryEscape(user)
		ev["queryStringParameters"] = map[string]any{"FromUserId": user}
	}
	b, _ := json.Marshal(ev)
	return b
}

// getStatus is one GET of a status route over HTTP; it fails the test unless
// the answer is 200 with a status body.
func getStatus(t *testing.T, s *devstack.Stack, event []byte) jobStatus {
	t.Helper()
	res, err := s.CallHTTP(t.Context(), event)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %s (throttled %q), want 200", res.StatusCode, res.Body, res.Throttled)
	}
	var st jobStatus
	if err := strictJSON([]byte(res.Body), &st); err != nil {
		t.Fatalf("GET: status %s: %v", res.Body, err)
	}
	return st
}

// testRegistryStatusOfHTTPJob: a lone job of 2,000 conversations started
// over HTTP answers 202 with a Location, which answers the running job with
// growing counts; once the queue drains, GET /conversations/jobs?FromUserId=
// answers the complete job with Deleted 2000.
func testRegistryStatusOfHTTPJob(t *testing.T) {
	const user, n = "status-http", 2000
	s, q := queueStack(t, "registry-status", devstack.QueueConfig{})
	w := newWorld(t, s)
	convs := seedUser(t, s, user, n)
	start := time.Now()
	res, err := s.CallHTTP(t.Context(), httpAPI(t, []byte(allConversations(user))))
	if err != nil {
		t.Fatal(err)
	}
	loc := header(res.Headers, "Location")
	var accepted struct {
		JobID   string `json:"JobId"`
		Outcome string
	}
	_ = json.Unmarshal([]byte(res.Body), &accepted)
	if res.StatusCode != http.StatusAccepted || accepted.Outcome != "accepted" || loc != "/conversations/jobs/"+accepted.JobID {
		t.Fatalf("POST: %d %s, Location %q; want 202 accepted with Location /conversations/jobs/{JobId}", res.StatusCode, res.Body, loc)
	}

	// The Location while the job runs, every 3 s.
	type statusSample struct {
		at      string // since the POST
		state   string
		deleted int
		rounds  int
	}
	var samples []statusSample
	byLocation := jobStatusEvent(t, loc, "")
	for {
		st := getStatus(t, s, byLocation)
		samples = append(samples, statusSample{time.Since(start).Round(100 * time.Millisecond).String(), st.State, st.Deleted, st.Rounds})
		if st.JobID != accepted.JobID || st.FromUserID != user {
			t.Fatalf("Location answered %+v, want job %s of %s", st, accepted.JobID, user)
		}
		if st.State != "running" {
			break
		}
		select {
		case <-time.After(3 * time.Second):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	waitDrained(t, q, 4*time.Minute)
	m := checkRegistryJob(t, s, q, w, user, convs, time.Since(start))

	var growth []int
	for i, sm := range samples {
		if i > 0 && sm.deleted < samples[i-1].deleted {
			t.Errorf("Deleted went down: %+v", samples)
		}
		if sm.state == "running" && !slices.Contains(growth, sm.deleted) {
			growth = append(growth, sm.deleted)
		}
	}
	if len(growth) < 2 {
		t.Errorf("the running job answered Deleted %v, want growing counts: %+v", growth, samples)
	}
	latest := getStatus(t, s, jobStatusEvent(t, "", user))
	if latest.State != "complete" || latest.Deleted != n || latest.JobID != accepted.JobID || latest.CompletedAt == nil {
		t.Errorf("GET /conversations/jobs?FromUserId=%s: %+v, want complete with Deleted %d", user, latest, n)
	}
	checkComplete(t, latest, user, m)
	if byID := getStatus(t, s, byLocation); byID.JobID != latest.JobID || byID.State != latest.State || byID.Deleted != latest.Deleted {
		t.Errorf("the Location answers %+v, the user's latest %+v", byID, latest)
	}
	t.Logf("FIGURES status of an HTTP job (%d conversations): Location samples (time since POST, state, deleted, rounds) %v; final %+v; %v",
		n, samples, latest, m)
}

// testRegistryWithoutTable is the stack without the shared table (no
// ZEGO_STATE_TABLE: the static rate split, no registry), where jobs behave as
// before issue 18: the same message sent twice, 2 s apart, starts two chains
// that race through the same 600 conversations, each to its own "job
// complete"; and the status routes answer 404 saying why. Its figures are the
// "before" of the message sent twice.
func testRegistryWithoutTable(t *testing.T) {
	const user, n = "no-table", 600
	cfg := config("registry-no-table", devstack.FunctionConfig{})
	cfg.Queue, cfg.NoStateTable = &devstack.QueueConfig{}, true
	s, err := devstack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	q := s.Queue()
	w := newWorld(t, s)
	seedUser(t, s, user, n)
	body := allConversations(user)
	start := time.Now()
	sendOne(t, q, body)
	time.Sleep(2 * time.Second)
	sendOne(t, q, body)
	waitDrained(t, q, 4*time.Minute)
	wall := time.Since(start)

	c, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	left, err := w.admin.Conversations(t.Context(), w.app, user)
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadLetters != 0 || len(left) != 0 {
		t.Errorf("dead letters %d, %d conversations left; want none", c.DeadLetters, len(left))
	}
	logs := registryLogs(s)
	ids, done := jobIDs(linesOf(logs, msgComplete)), linesOf(logs, msgComplete)
	// At least one chain per copy; more when a round's SendMessage timed out
	// after SQS took its continuation (seen on a loaded machine): the
	// record's redelivery then starts one more.
	if len(ids) < 2 || len(done) != len(ids) || len(linesOf(logs, msgJoined)) != 0 {
		t.Errorf("jobs %v, %d %q lines, %d joined; want a chain per copy at least, each complete, none joined", ids, len(done), msgComplete, len(linesOf(logs, msgJoined)))
	}
	m := measureJob(t, w, q, user)
	if m.deleted != n {
		t.Errorf("%d deletions, want each of the %d conversations once", m.deleted, n)
	}

	res := invoke(t, s, fmt.Appendf(nil, `{"FromUserId": %q, "JobStatus": true}`, user))
	if !res.FunctionError || res.ErrorType != "NotFound" || !strings.Contains(res.ErrorMessage, "ZEGO_STATE_TABLE") {
		t.Errorf("direct status without the table: %s (%s: %s), want NotFound naming ZEGO_STATE_TABLE", res.Body, res.ErrorType, res.ErrorMessage)
	}
	get, err := s.CallHTTP(t.Context(), jobStatusEvent(t, "", user))
	if err != nil {
		t.Fatal(err)
	}
	var e apiError
	if get.StatusCode != http.StatusNotFound || json.Unmarshal([]byte(get.Body), &e) != nil || e.Error.Code != "NotFound" || !strings.Contains(e.Error.Message, "ZEGO_STATE_TABLE") {
		t.Errorf("GET /conversations/jobs without the table: %d %s, want 404 NotFound naming ZEGO_STATE_TABLE", get.StatusCode, get.Body)
	}
	t.Logf("FIGURES without the table, sent twice 2s apart (%d conversations): wall %s; %d chains (%d %q lines); %d DeleteConv calls, %d deleted, %d (%.1f%%) already gone; "+
		"most DeleteConv in a sliding second %d, %d refused by ZEGO's rate limit",
		n, wall.Round(100*time.Millisecond), len(ids), len(linesOf(logs, msgNotSent)), msgNotSent, m.deletes, m.deleted, m.alreadyGone, m.alreadyGonePercent(), m.maxWindow, m.throttled)
}
