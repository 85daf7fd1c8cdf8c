package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// The outage of issue 19, scaled down: ZEGO answers 500 to every call for
// outageLength while single deletions and a job wait in the queue. The
// backoff is scaled by the same environment the template sets.
const (
	outageLength      = 3 * time.Minute
	outageSingles     = 200
	outageJobConvs    = 1000
	outageBackoffBase = 2 * time.Second
	outageBackoffMax  = 30 * time.Second
	// outageMaxReceives is the template's MaxReceiveCount.
	outageMaxReceives = 20
	// outageFaults is more 500s than the function can ask for in the
	// outage; the rest are used up when it ends (endOutage).
	outageFaults = 5000
)

// backoffStack starts a stack with the job queue, one queue function
// instance at ZEGO's full rate (the api function sends nothing), the
// template's MaxReceiveCount, and the function's backoff and dead-letter
// queue set through its environment.
func backoffStack(t *testing.T, name string) (*devstack.Stack, *devstack.Queue, *world) {
	t.Helper()
	// The dead-letter queue's URL is known only once the stack runs, while
	// the functions' environment is fixed before: moto finds a queue by the
	// last part of its URL, so the URL is built from the name devstack gives
	// the dead-letter queue (checked below) on moto's account.
	dlq := "http://127.0.0.1:1/123456789012/" + name + "-dlq"
	s, q := queueStack(t, name, devstack.QueueConfig{
		Name:            name,
		Instances:       1,
		MaxReceiveCount: outageMaxReceives,
		Function: devstack.FunctionConfig{Timeout: jobTimeout, RateLimit: jobRate, Env: []string{
			"ZEGO_BACKOFF_BASE=" + outageBackoffBase.String(),
			"ZEGO_BACKOFF_MAX=" + outageBackoffMax.String(),
			"ZEGO_DEAD_LETTER_QUEUE_URL=" + dlq,
		}},
	})
	if u, _ := url.Parse(q.DeadLetterURL); u == nil || !strings.HasSuffix(dlq, u.Path) {
		t.Fatalf("the dead-letter queue is %s, not the %s the function was given", q.DeadLetterURL, dlq)
	}
	return s, q, newWorld(t, s)
}

// endOutage uses up the outage's remaining faults with requests of its own
// (no AppId: they count toward nothing), until the ZIM server answers one
// normally. It returns when that happened.
func endOutage(t *testing.T, w *world, zimURL string) time.Time {
	t.Helper()
	reqs, err := w.admin.Requests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, r := range reqs {
		if r.Fault != "" {
			used++
		}
	}
	if used >= outageFaults {
		t.Fatalf("the function used all %d faults before the outage's end", outageFaults)
	}
	target := strings.TrimSuffix(zimURL, "/") + "/?Action=EndOfOutage"
	post := func() int {
		resp, err := http.Post(target, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range jobs {
				post()
			}
		})
	}
	for range outageFaults - used {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	// The function may have used some of them meanwhile: one over is enough.
	for post() == http.StatusInternalServerError {
	}
	return time.Now()
}

// TestOutageBacksOffAndLosesNothing: during a 3-minute ZEGO outage the
// queue's records come back later and later, each batch stops after the
// records that fail the same way, nothing reaches the dead-letter queue,
// and everything is deleted once ZEGO is back. It logs the calls sent during
// the outage beside those the design before issue 19 would have sent.
func TestOutageBacksOffAndLosesNothing(t *testing.T) {
	s, q, w := backoffStack(t, "zim-deleteconv-outage")
	const jobUser = "olga"
	if _, err := s.SeedConversations(t.Context(), jobUser, outageJobConvs); err != nil {
		t.Fatal(err)
	}
	var singles []devstack.Message
	var singleUsers []string
	for i := range outageSingles {
		u := fmt.Sprintf("sam-%d", i%10)
		if i < 10 {
			singleUsers = append(singleUsers, u)
		}
		c := peer(fmt.Sprintf("single-%03d", i))
		w.seed(u, c)
		singles = append(singles, devstack.Message{Body: string(direct(u, c.ConvID, c.ConvType))})
	}

	w.inject(zimtest.Fault{HTTPStatus: http.StatusInternalServerError, Times: outageFaults})
	start := time.Now()
	if _, err := q.Send(t.Context(), devstack.Message{Body: allConversations(jobUser)}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Send(t.Context(), singles...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-time.After(time.Until(start.Add(outageLength))):
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	end := endOutage(t, w, s.ZIMURL())
	c := waitDrained(t, q, 3*time.Minute)
	drained := time.Now()

	if c.DeadLetters != 0 {
		t.Errorf("%d messages in the dead-letter queue, want none", c.DeadLetters)
	}
	for _, u := range append([]string{jobUser}, singleUsers...) {
		left, err := w.admin.Conversations(t.Context(), w.app, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("%d of %s's conversations left, want none (e.g. %v)", len(left), u, left[0])
		}
	}

	// The calls the function sent during the outage: every one answered by
	// the fault (endOutage's own carry no AppId).
	reqs, err := w.admin.Requests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, r := range reqs {
		if r.Fault != "" && r.AppID == w.app {
			calls++
		}
	}
	// What the function did with the records delivered during the outage.
	deliveries, tried, skipped, maxReceive := 0, 0, 0, 0
	for _, b := range q.Batches() {
		if b.Start.After(end) {
			continue
		}
		deliveries += len(b.Messages)
		for _, m := range b.Messages {
			maxReceive = max(maxReceive, m.ReceiveCount)
		}
		for _, l := range b.Result.Logs {
			if l.String("msg") != "request outcome" {
				continue
			}
			if l.String("outcome") == "skipped" {
				skipped++
			} else {
				tried++
			}
		}
		if b.WholeBatch != "" || b.Err != nil {
			t.Errorf("batch at %s: whole batch %q, error %v", b.Start.Format(time.StampMilli), b.WholeBatch, b.Err)
		}
	}
	if tried == 0 {
		t.Fatal("no record was tried during the outage")
	}
	perRecord := float64(calls) / float64(tried)
	records := outageSingles + 1
	// Before issue 19 every delivered record was tried; and a record came
	// back after the queue's visibility timeout each time.
	sameDeliveries := float64(deliveries) * perRecord
	visibility := q.Config().VisibilityTimeout
	receivesBefore := 1 + int(outageLength/visibility)
	before := float64(records*receivesBefore) * perRecord
	t.Logf("outage %v: %d calls sent; %d deliveries (%d tried, %d skipped by the early stop), %.2f calls per tried record, highest receive count %d of %d",
		end.Sub(start).Round(time.Second), calls, deliveries, tried, skipped, perRecord, maxReceive, outageMaxReceives)
	t.Logf("before issue 19: the same deliveries, every record tried: %.0f calls; %d records × %d receives (visibility timeout %v) × %.2f: %.0f calls",
		sameDeliveries, records, receivesBefore, visibility, perRecord, before)
	t.Logf("everything deleted %v after the outage ended (%v after it began)", drained.Sub(end).Round(time.Second), drained.Sub(start).Round(time.Second))
	if maxReceive >= outageMaxReceives {
		t.Errorf("a record was received %d times during the outage: the backoff would not hold an outage of this length", maxReceive)
	}
	// Far fewer: a batch tries 3 records, and the instance's next ones 1.
	if float64(calls) > sameDeliveries/4 || float64(calls) > before/2 {
		t.Errorf("%d calls during the outage, want at most a quarter of the %.0f the same deliveries cost before and half of the %.0f of the schedule before",
			calls, sameDeliveries, before)
	}
}

// TestInvalidMessageGoesToTheDeadLetterQueueAtOnce: an invalid message, and
// one ZEGO refuses as invalid, reach the dead-letter queue on their first
// receive, with the reason in the DeadLetterReason attribute; a valid message
// beside them is deleted.
func TestInvalidMessageGoesToTheDeadLetterQueueAtOnce(t *testing.T) {
	s, q, w := backoffStack(t, "zim-deleteconv-invalid")
	w.seed("ivy", peer("ok"), peer("refused"))
	w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "refused", Code: codeInvalidArg})
	invalid := `{"FromUserId": "ivy", "ConvId": "ok", "ConvType": 1}`
	refused := string(direct("ivy", "refused", 0))
	ids, err := q.Send(t.Context(), bodies([]byte(invalid), []byte(refused), direct("ivy", "ok", 0))...)
	if err != nil {
		t.Fatal(err)
	}
	waitDrained(t, q, time.Minute)
	receives := q.Receives()
	for _, id := range ids {
		if receives[id] != 1 {
			t.Errorf("message %s received %d times, want once", id, receives[id])
		}
	}
	if w.has("ivy", peer("ok")) {
		t.Error("the valid message's conversation is still stored")
	}
	letters := deadLetters(t, s, q)
	want := map[string]string{
		invalid: "invalid_request: ConvType must be 0 (one-on-one) or 2 (group)",
		refused: "invalid_request: ZEGO code 660000002, RequestId ",
	}
	if len(letters) != len(want) {
		t.Fatalf("dead letters %v, want the 2 invalid messages", letters)
	}
	for body, reason := range want {
		if got, ok := letters[body]; !ok || !strings.HasPrefix(got, reason) {
			t.Errorf("dead letter %s: reason %q, want %q…", body, got, reason)
		}
	}
}

// deadLetters reads the dead-letter queue's messages (body → DeadLetterReason).
func deadLetters(t *testing.T, s *devstack.Stack, q *devstack.Queue) map[string]string {
	t.Helper()
	client := sqs.New(sqs.Options{
		Region:       motoserver.Region,
		BaseEndpoint: aws.String(s.SecretsManagerURL()), // moto serves SQS on the same endpoint
		Credentials:  credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, ""),
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := map[string]string{}
	for {
		got, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.DeadLetterURL), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			return out
		}
		for _, m := range got.Messages {
			var reason string
			if a, ok := m.MessageAttributes["DeadLetterReason"]; ok && aws.ToString(a.DataType) == "String" {
				reason = aws.ToString(a.StringValue)
			}
			out[aws.ToString(m.Body)] = reason
		}
	}
}
