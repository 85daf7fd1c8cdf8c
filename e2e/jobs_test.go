package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// The big job of issue 10: one user's conversations, one AllConversations
// message, beside single deletions of other users in the same queue.
const (
	bigJobConversations = 2500
	bigJobSingles       = 30
	// jobRate is the queue function's ZEGO_RATE_LIMIT. One instance runs at
	// it, 2/s below ZEGO's 20 per second per AppId: at 20/s the limiter's 3%
	// headroom tolerates 30 ms of jitter between the limiter and the ZIM
	// server, which a CPU-starved test machine exceeds (21 calls in a second
	// were seen at a load of 5 on 2 cores); at 18/s it tolerates 146 ms. The
	// ZIM server's own limit then shows any call the limiter let through
	// too early. These tests are about the job's chain, not the pace.
	jobRate        = 18.0
	jobTimeout     = 10 * time.Second
	codeInvalidArg = 660000002
	codeSignature  = 100000005
)

// jobStack starts a stack whose queue function is one instance at jobRate
// with a jobTimeout deadline (the template's redrive settings unless qc says
// otherwise).
func jobStack(t *testing.T, name string, qc devstack.QueueConfig) (*devstack.Stack, *devstack.Queue, *world) {
	t.Helper()
	qc.Instances = 1
	// The failed-record backoff scaled down as the queue is (the template's
	// 60 s doubling to 1 h would hold a stuck job's fifth run past the test).
	qc.Function = devstack.FunctionConfig{Timeout: jobTimeout, RateLimit: jobRate,
		Env: []string{"ZEGO_BACKOFF_BASE=1s", "ZEGO_BACKOFF_MAX=10s"}}
	s, q := queueStack(t, name, qc)
	return s, q, newWorld(t, s)
}

// bigJob is the traffic of one run of the big job's test.
type bigJob struct {
	user    string
	convs   []zim.Conversation
	singles []devstack.Message
	// singleUsers own the single deletions' conversations.
	singleUsers []string
	jobID       string // the first message's id
	singleIDs   []string
}

// startBigJob seeds the job's user and the single deletions' users, and
// sends the job's message, then the single deletions. On a FIFO queue each
// user is its own message group.
func startBigJob(t *testing.T, s *devstack.Stack, q *devstack.Queue, w *world, user string) *bigJob {
	t.Helper()
	convs, err := s.SeedConversations(t.Context(), user, bigJobConversations)
	if err != nil {
		t.Fatal(err)
	}
	j := &bigJob{user: user, convs: convs}
	for i := range bigJobSingles {
		u := fmt.Sprintf("%s-single-%d", user, i%3)
		if !slices.Contains(j.singleUsers, u) {
			j.singleUsers = append(j.singleUsers, u)
		}
		c := peer(fmt.Sprintf("friend-%02d", i))
		if i%2 == 1 {
			c = group(fmt.Sprintf("#team-%02d", i))
		}
		w.seed(u, c)
		j.singles = append(j.singles, devstack.Message{Body: string(direct(u, c.ConvID, c.ConvType)), GroupID: groupFor(q, u)})
	}
	ids, err := q.Send(t.Context(), devstack.Message{Body: allConversations(user), GroupID: groupFor(q, user)})
	if err != nil {
		t.Fatal(err)
	}
	j.jobID = ids[0]
	if j.singleIDs, err = q.Send(t.Context(), j.singles...); err != nil {
		t.Fatal(err)
	}
	return j
}

func groupFor(q *devstack.Queue, user string) string {
	if q.FIFO {
		return user
	}
	return ""
}

func allConversations(user string) string {
	return fmt.Sprintf(`{"FromUserId": %q, "AllConversations": true}`, user)
}

// jobMeasure is what a test measures of a job at the ZIM server and in the
// function's logs.
type jobMeasure struct {
	deletes      int           // the job user's DeleteConv calls
	deleted      int           // of them, the conversations deleted (Code 0, no fault)
	alreadyGone  int           // of them, answered "does not exist" (660800002)
	span         time.Duration // from the job's first deletion to its last
	rate         float64       // deleted per second over span
	maxWindow    int           // most DeleteConv of any user in one sliding second
	maxWindowAll int           // the same for every API call
	throttled    int           // 660300005 the server itself answered (not a fault)
	rounds       int           // the "job complete" line's
	deliveries   int           // the job's messages delivered to the function
	summary      devstack.LogRecord
}

func (m jobMeasure) ratePercent() float64 { return 100 * m.rate / jobRate }

func (m jobMeasure) alreadyGonePercent() float64 {
	if m.deletes == 0 {
		return 0
	}
	return 100 * float64(m.alreadyGone) / float64(m.deletes)
}

// measureJob reads the ZIM server's request log and the batches.
func measureJob(t *testing.T, w *world, q *devstack.Queue, user string) jobMeasure {
	t.Helper()
	reqs, err := w.admin.Requests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var m jobMeasure
	var deletions, calls, all []time.Time
	for _, r := range reqs {
		all = append(all, r.Time)
		if r.Action != "DeleteConv" {
			continue
		}
		calls = append(calls, r.Time)
		if r.Code == codeAppIDRateLimited && r.Fault == "" {
			m.throttled++
		}
		if r.FromUserID != user {
			continue
		}
		m.deletes++
		switch {
		case r.Code == 0 && r.HTTPStatus == 200 && r.Fault == "":
			deletions = append(deletions, r.Time)
		case r.Code == codeConversationNotFound && r.Fault == "":
			m.alreadyGone++
		}
	}
	m.deleted = len(deletions)
	slices.SortFunc(deletions, func(a, b time.Time) int { return a.Compare(b) })
	if n := len(deletions); n > 1 {
		m.span = deletions[n-1].Sub(deletions[0])
		m.rate = float64(n-1) / m.span.Seconds()
	}
	m.maxWindow, m.maxWindowAll = maxInWindow(calls, time.Second), maxInWindow(all, time.Second)
	for _, b := range q.Batches() {
		for _, d := range b.Messages {
			if strings.Contains(d.Body, `"AllConversations"`) && strings.Contains(d.Body, fmt.Sprintf("%q", user)) {
				m.deliveries++
			}
		}
		for _, l := range b.Result.Logs {
			if l.String("msg") == "job complete" && l.String("fromUserId") == user {
				m.summary = l
				if n, ok := l.Number("rounds"); ok {
					m.rounds = int(n)
				}
			}
		}
	}
	return m
}

// maxInWindow is the most times in any window (t-d, t], as the ZIM server
// counts its rate limit.
func maxInWindow(times []time.Time, d time.Duration) int {
	times = slices.Clone(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most, start := 0, 0
	for i, t := range times {
		for !times[start].After(t.Add(-d)) {
			start++
		}
		most = max(most, i-start+1)
	}
	return most
}

// checkBigJob asserts what issue 10 asks of a big job that must succeed:
// everything deleted, both queues empty, no invocation at its deadline, the
// ZIM server's window kept, few calls for conversations already gone. It
// logs the measurements (rate, rounds, wall time) and returns them.
func checkBigJob(t *testing.T, s *devstack.Stack, q *devstack.Queue, w *world, j *bigJob, wall time.Duration) jobMeasure {
	t.Helper()
	c, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadLetters != 0 || c.Visible+c.InFlight+c.Delayed != 0 {
		t.Errorf("queues at the end: %+v, want both empty", c)
	}
	for _, u := range append([]string{j.user}, j.singleUsers...) {
		left, err := w.admin.Conversations(t.Context(), w.app, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("%d of %s's conversations left, want none (e.g. %v)", len(left), u, left[0])
		}
	}
	receives := q.Receives()
	for i, id := range j.singleIDs {
		if receives[id] == 0 {
			t.Errorf("single deletion %d (%s) never delivered", i, j.singles[i].Body)
		}
	}

	// No invocation reached its deadline: the poller saw none time out,
	// the emulator printed no "Task timed out", and no record ended as a
	// timeout (a record unfinished at the deadline is reported so). And no
	// record failed: a failed one waits out the visibility timeout.
	for _, b := range q.Batches() {
		if b.Result.ErrorType == devstack.TimedOutErrorType || b.WholeBatch != "" || b.Err != nil || len(b.Failed) > 0 {
			t.Errorf("batch on %s at %s: error type %q, whole batch %q, error %v, failed %v",
				b.Function, b.Start.Format(time.StampMilli), b.Result.ErrorType, b.WholeBatch, b.Err, b.Failed)
		}
		for _, l := range b.Result.Logs {
			if l.String("msg") == "request outcome" && l.String("outcome") == "timeout" {
				t.Errorf("batch at %s: a record ended as a timeout: %v", b.Start.Format(time.StampMilli), l)
			}
		}
	}
	for _, fn := range s.QueueFunctions() {
		for _, line := range fn.Output() {
			if strings.Contains(line, "Task timed out") {
				t.Errorf("%s: %s", fn.Name, line)
			}
		}
	}

	m := measureJob(t, w, q, j.user)
	if m.deleted != len(j.convs) {
		t.Errorf("the ZIM server deleted %d of %s's conversations, want each of the %d once", m.deleted, j.user, len(j.convs))
	}
	if m.maxWindow > 20 {
		t.Errorf("%d DeleteConv calls within one second at the ZIM server, want at most 20", m.maxWindow)
	}
	if p := m.alreadyGonePercent(); p > 3 {
		t.Errorf("%d of the job's %d DeleteConv calls (%.1f%%) were for conversations already gone, want at most 3%%", m.alreadyGone, m.deletes, p)
	}
	if m.summary == nil {
		t.Errorf("no \"job complete\" line for %s", j.user)
	} else if m.rounds < 2 || m.rounds > m.deliveries {
		t.Errorf("job complete after %d rounds in %d deliveries; want at least 2 rounds, one delivery each at least", m.rounds, m.deliveries)
	}
	t.Logf("job of %d conversations + %d single deletions: wall time %s (send to drained); %d rounds in %d deliveries; "+
		"job rate %.2f/s = %.1f%% of ZEGO_RATE_LIMIT %g (%d deleted in %s, first to last); "+
		"%d DeleteConv calls of the job, %d (%.2f%%) already gone; max %d DeleteConv (%d calls of any API) in one second; %d throttled by the server; summary %v",
		len(j.convs), len(j.singles), wall.Round(100*time.Millisecond), m.rounds, m.deliveries,
		m.rate, m.ratePercent(), jobRate, m.deleted, m.span.Round(100*time.Millisecond),
		m.deletes, m.alreadyGone, m.alreadyGonePercent(), m.maxWindow, m.maxWindowAll, m.throttled, m.summary)
	if t.Failed() {
		logBatches(t, q)
	}
	return m
}

func logBatches(t *testing.T, q *devstack.Queue) {
	t.Helper()
	for _, b := range q.Batches() {
		t.Logf("batch on %s at %s: %d messages, %s, whole batch %q, failed %v, %s", b.Function, b.Start.Format(time.StampMilli),
			len(b.Messages), b.Result.Latency.Round(time.Millisecond), b.WholeBatch, b.Failed, snippetOf(b.Result.Body))
	}
}

func snippetOf(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// continuation is the field the function writes on a job's later rounds.
type continuation struct {
	JobID string `json:"JobId"`
	Round int    `json:"Round"`
}

func continuationOf(body string) *continuation {
	var m struct {
		Continuation *continuation
	}
	if json.Unmarshal([]byte(body), &m) != nil {
		return nil
	}
	return m.Continuation
}

// TestJobs runs issue 10's job tests at the same time, each on a stack of its
// own: together they take as long as the longest (about three minutes)
// rather than ten. The subtests are started from goroutines, not with
// t.Parallel, because -parallel defaults to GOMAXPROCS (2 on a small machine)
// and they wait on the clock, not on the CPU.
func TestJobs(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"BigStandardQueue", testJobBigStandardQueue},
		{"BigFIFOQueue", testJobBigFIFOQueue},
		{"BigTransientFaults", testJobBigTransientFaults},
		{"StuckEveryConversationRefused", testJobStuckEveryConversationRefused},
		{"StuckWrongSecret", testJobStuckWrongSecret},
	} {
		wg.Go(func() { t.Run(tc.name, tc.f) })
	}
	wg.Wait()
}

// testJobBigStandardQueue is issue 10's job through a standard queue: 2,500
// conversations of one user in one AllConversations message, 30 single
// deletions of other users beside it, a 10 s timeout and the default rate.
func testJobBigStandardQueue(t *testing.T) {
	s, q, w := jobStack(t, "job-standard", devstack.QueueConfig{})
	j := startBigJob(t, s, q, w, "bulk-std")
	start := time.Now()
	waitDrained(t, q, 4*time.Minute)
	checkBigJob(t, s, q, w, j, time.Since(start))
}

// testJobBigFIFOQueue is the same job on a FIFO queue with content-based
// deduplication, each user its own message group: every continuation keeps
// the job's group and carries its own deduplication id, <JobId>-<Round>.
func testJobBigFIFOQueue(t *testing.T) {
	s, q, w := jobStack(t, "job-fifo", devstack.QueueConfig{FIFO: true, ContentBasedDeduplication: true})
	j := startBigJob(t, s, q, w, "bulk-fifo")
	start := time.Now()
	waitDrained(t, q, 4*time.Minute)
	checkBigJob(t, s, q, w, j, time.Since(start))

	var jobID string
	rounds := 0
	for _, b := range q.Batches() {
		for _, d := range b.Messages {
			c := continuationOf(d.Body)
			if c == nil {
				continue
			}
			rounds++
			if jobID == "" {
				jobID = c.JobID
			}
			if want := fmt.Sprintf("%s-%d", c.JobID, c.Round); d.DeduplicationID != want || d.GroupID != j.user || c.JobID != jobID {
				t.Errorf("continuation of round %d of job %s: group %q, deduplication id %q; want group %q, id %q, job %s",
					c.Round, c.JobID, d.GroupID, d.DeduplicationID, j.user, want, jobID)
			}
		}
	}
	if rounds == 0 {
		t.Error("no continuation was delivered")
	}
	t.Logf("%d continuations delivered, in group %q, each with the deduplication id <JobId>-<Round>", rounds, j.user)
}

// testJobBigTransientFaults runs the big job while about a tenth of its
// conversations meet one transient ZEGO fault each (HTTP 500, a dropped
// connection, Code 1, 660300005, a 200 that is not JSON) and its first
// listing fails: everything is deleted and nothing goes to the dead-letter
// queue.
func testJobBigTransientFaults(t *testing.T) {
	s, q, w := jobStack(t, "job-faults", devstack.QueueConfig{})
	// The first listing: a 200 that is not JSON is final for the client, so
	// the job's listing fails.
	w.inject(zimtest.Fault{Action: "QueryConversationList", Body: "<html>502 Bad Gateway</html>"})
	faults := []zimtest.Fault{
		{HTTPStatus: 500},
		{Drop: true},
		{Code: 1},
		{Code: codeAppIDRateLimited},
		{Body: "<html>upstream hiccup</html>"},
	}
	// Every tenth conversation, the kinds in turn: each page of the
	// listing meets every kind.
	faulted := 0
	for i := 9; i < bigJobConversations; i += 10 {
		f := faults[(i/10)%len(faults)]
		f.Action, f.ConvID = "DeleteConv", convID(i)
		w.inject(f)
		faulted++
	}
	j := startBigJob(t, s, q, w, "bulk-faults")
	start := time.Now()
	waitDrained(t, q, 5*time.Minute)
	m := checkBigJob(t, s, q, w, j, time.Since(start))

	reqs, err := w.admin.Requests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, r := range reqs {
		if r.Fault != "" {
			served[r.Action]++
		}
	}
	if served["DeleteConv"] != faulted || served["QueryConversationList"] != 1 {
		t.Errorf("faults served: %v, want %d DeleteConv and 1 QueryConversationList", served, faulted)
	}
	t.Logf("%d conversations met a fault (%.0f%%); job rate %.1f%% of ZEGO_RATE_LIMIT", faulted, 100*float64(faulted)/bigJobConversations, m.ratePercent())
}

// convID is SeedConversations' ConvId of its i-th conversation (from 0).
func convID(i int) string {
	if (i+1)%4 == 0 {
		return fmt.Sprintf("#group-%06d", i+1)
	}
	return fmt.Sprintf("peer-%06d", i+1)
}

// runsAtServer counts the ZIM server's requests during each batch's
// invocation, for the batches that carried body.
func runsAtServer(reqs []zimtest.Request, batches []devstack.Batch, body string) []int {
	var out []int
	for _, b := range batches {
		if !slices.ContainsFunc(b.Messages, func(d devstack.Delivery) bool { return d.Body == body }) {
			continue
		}
		end := b.Start.Add(b.Result.Latency)
		n := 0
		for _, r := range reqs {
			if !r.Time.Before(b.Start) && !r.Time.After(end) {
				n++
			}
		}
		out = append(out, n)
	}
	return out
}

// checkDeadLettered asserts that the job's message went to the dead-letter
// queue after MaxReceiveCount runs, each within maxCalls calls to the ZIM
// server, and that none of user's n conversations was deleted.
func checkDeadLettered(t *testing.T, q *devstack.Queue, w *world, user string, n, maxCalls int) []int {
	t.Helper()
	body := allConversations(user)
	dl, err := q.DeadLetters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Body != body {
		t.Errorf("dead letters %v, want the job's message", dl)
	}
	reqs, err := w.admin.Requests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	runs := runsAtServer(reqs, q.Batches(), body)
	if len(runs) != devstack.DefaultMaxReceiveCount {
		t.Errorf("%d runs of the job, want MaxReceiveCount %d", len(runs), devstack.DefaultMaxReceiveCount)
	}
	total := 0
	for i, c := range runs {
		total += c
		if c == 0 || c > maxCalls {
			t.Errorf("run %d sent %d calls to the ZIM server, want 1 to %d", i+1, c, maxCalls)
		}
	}
	if total != len(reqs) {
		t.Errorf("%d requests at the ZIM server, %d of them during the job's runs", len(reqs), total)
	}
	for _, b := range q.Batches() {
		for _, d := range b.Messages {
			if d.Body != body {
				t.Errorf("a message %s was delivered: a job without progress must not continue", snippetOf([]byte(d.Body)))
			}
		}
		if b.WholeBatch != "" || !slices.Equal(b.Failed, []string{b.Messages[0].MessageID}) {
			t.Errorf("batch at %s: whole batch %q, failed %v; want the record reported failed", b.Start.Format(time.StampMilli), b.WholeBatch, b.Failed)
		}
	}
	left, err := w.admin.Conversations(t.Context(), w.app, user)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != n {
		t.Errorf("%d of %s's %d conversations left, want all", len(left), user, n)
	}
	return runs
}

// stuckQueue is the stuck jobs' queue: its visibility timeout is the
// function's timeout, the shortest Lambda accepts, so that the five runs take
// about a minute.
var stuckQueue = devstack.QueueConfig{VisibilityTimeout: jobTimeout}

// testJobStuckEveryConversationRefused: ZEGO refuses every conversation of
// the user for good, so the job makes no progress and reaches the
// dead-letter queue after MaxReceiveCount runs; each run stops after the
// README's 100 failed calls without progress (plus the calls its 4 workers
// had in flight, and the listing).
func testJobStuckEveryConversationRefused(t *testing.T) {
	const n = 300
	s, q, w := jobStack(t, "job-refused", stuckQueue)
	if _, err := s.SeedConversations(t.Context(), "refused", n); err != nil {
		t.Fatal(err)
	}
	w.inject(zimtest.Fault{Action: "DeleteConv", Code: codeInvalidArg, Times: 100000})
	if _, err := q.Send(t.Context(), devstack.Message{Body: allConversations("refused")}); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, q, 3*time.Minute)
	runs := checkDeadLettered(t, q, w, "refused", n, 1+100+4)
	t.Logf("calls at the ZIM server per run: %v", runs)
	if t.Failed() {
		logBatches(t, q)
	}
}

// testJobStuckWrongSecret: the ZIM server's secret is rotated while Secrets
// Manager still holds the old one. The first listing's invalid signature is
// systemic and ends each run at once (the client fetches the secret again
// and sees it unchanged); the job reaches the dead-letter queue after
// MaxReceiveCount runs.
func testJobStuckWrongSecret(t *testing.T) {
	const n = 50
	s, q, w := jobStack(t, "job-wrong-secret", stuckQueue)
	if _, err := s.SeedConversations(t.Context(), "locked", n); err != nil {
		t.Fatal(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	if err := w.admin.SetSecret(t.Context(), w.app, hex.EncodeToString(b[:])); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(t.Context(), devstack.Message{Body: allConversations("locked")}); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, q, 3*time.Minute)
	runs := checkDeadLettered(t, q, w, "locked", n, 3)
	reqs, err := w.admin.Requests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.SignatureValid || r.Code != codeSignature {
			t.Errorf("ZIM server saw %v, want only invalid signatures", r)
		}
	}
	for _, bt := range q.Batches() {
		if l := outcomeLine(bt.Result, "", ""); l == nil || l.String("outcome") != "configuration_error" {
			t.Errorf("batch at %s: outcome line %v, want configuration_error", bt.Start.Format(time.StampMilli), l)
		}
	}
	// The secret the function holds never shows in its output.
	sec, err := s.SecretsManager().GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretID())})
	if err != nil {
		t.Fatal(err)
	}
	var held struct{ ServerSecret string }
	if err := json.Unmarshal([]byte(aws.ToString(sec.SecretString)), &held); err != nil || held.ServerSecret == "" {
		t.Fatalf("reading the secret: %v", err)
	}
	for _, fn := range s.QueueFunctions() {
		for _, line := range fn.Output() {
			if strings.Contains(line, held.ServerSecret) {
				t.Fatalf("%s wrote the ServerSecret", fn.Name)
			}
		}
	}
	t.Logf("calls at the ZIM server per run: %v", runs)
	if t.Failed() {
		logBatches(t, q)
	}
}
