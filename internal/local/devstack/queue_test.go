package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

// startQueue starts the stand-ins with a queue: a 1 s function timeout and,
// to keep the tests short, a 2 s visibility timeout and 2 receives before
// the dead-letter queue.
func startQueue(t *testing.T, qc devstack.QueueConfig) (*devstack.Stack, *devstack.Queue) {
	t.Helper()
	root, fn, zim := standIns(t)
	if qc.Function.Timeout == 0 {
		qc.Function.Timeout = time.Second
	}
	if qc.VisibilityTimeout == 0 {
		qc.VisibilityTimeout = 2 * time.Second
	}
	if qc.MaxReceiveCount == 0 {
		qc.MaxReceiveCount = 2
	}
	s, err := devstack.Start(t.Context(), devstack.Config{Root: root, Bootstrap: fn, ZIMServer: zim, LogDir: t.TempDir(), Queue: &qc})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, s.Queue()
}

func send(t *testing.T, q *devstack.Queue, bodies ...string) []string {
	t.Helper()
	var msgs []devstack.Message
	for _, b := range bodies {
		msgs = append(msgs, devstack.Message{Body: b})
	}
	ids, err := q.Send(t.Context(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func drain(t *testing.T, q *devstack.Queue) devstack.QueueCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := q.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func deadLetterIDs(t *testing.T, q *devstack.Queue) []string {
	t.Helper()
	dl, err := q.DeadLetters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range dl {
		ids = append(ids, m.MessageID)
	}
	slices.Sort(ids)
	return ids
}

// loggedEvent is the SQS event the stand-in logged for a batch.
func loggedEvent(t *testing.T, b devstack.Batch) events.SQSEvent {
	t.Helper()
	for _, l := range b.Result.Logs {
		if l.String("msg") == "sqs event" {
			raw, _ := json.Marshal(l["event"])
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			return ev
		}
	}
	t.Fatalf("batch on %s: the function logged no event (%s)", b.Function, b.Result.Body)
	return events.SQSEvent{}
}

func TestQueueDeletesSucceededRecordsAndRedrivesFailedOnes(t *testing.T) {
	s, q := startQueue(t, devstack.QueueConfig{})
	if want := "arn:aws:sqs:us-east-1:123456789012:" + devstack.DefaultQueueName; q.ARN != want {
		t.Errorf("queue ARN %s, want %s", q.ARN, want)
	}
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, fmt.Sprintf(`{"n": %d}`, i))
	}
	bodies = append(bodies, `{"failUntil": 0}`, `{"failUntil": 2}`)
	ids := send(t, q, bodies...)
	poison, retried := ids[12], ids[13]

	c := drain(t, q)
	if c.DeadLetters != 1 {
		t.Errorf("%d messages in the dead-letter queue, want 1", c.DeadLetters)
	}
	if got := deadLetterIDs(t, q); !slices.Equal(got, []string{poison}) {
		t.Errorf("dead letters %v, want the always-failing message %s", got, poison)
	}
	receives := q.Receives()
	for i, id := range ids {
		want := 1
		if id == poison || id == retried {
			want = 2 // MaxReceiveCount
		}
		if receives[id] != want {
			t.Errorf("message %d (%s) delivered %d times, want %d", i, bodies[i], receives[id], want)
		}
	}

	for _, b := range q.Batches() {
		if len(b.Messages) > devstack.DefaultBatchSize || b.WholeBatch != "" || b.Err != nil {
			t.Errorf("batch on %s: %d messages, whole batch %q, error %v", b.Function, len(b.Messages), b.WholeBatch, b.Err)
		}
		ev := loggedEvent(t, b)
		if len(ev.Records) != len(b.Messages) {
			t.Fatalf("event with %d records for a batch of %d", len(ev.Records), len(b.Messages))
		}
		for i, rec := range ev.Records {
			m := b.Messages[i]
			if rec.MessageId != m.MessageID || rec.Body != m.Body || rec.EventSource != "aws:sqs" || rec.EventSourceARN != q.ARN ||
				rec.AWSRegion != "us-east-1" || rec.ReceiptHandle == "" || rec.Md5OfBody == "" {
				t.Errorf("record %+v, want message %s from %s", rec, m.MessageID, q.ARN)
			}
			if rec.Attributes["ApproximateReceiveCount"] != fmt.Sprint(m.ReceiveCount) || rec.Attributes["SentTimestamp"] == "" ||
				rec.Attributes["ApproximateFirstReceiveTimestamp"] == "" || rec.Attributes["SenderId"] == "" {
				t.Errorf("record attributes %v, want the receive count %d and SQS's system attributes", rec.Attributes, m.ReceiveCount)
			}
		}
	}

	// The functions point at the job queue through moto's SQS (the budget's
	// variables: TestStackAsDeployed).
	for _, f := range s.APIFunctions() {
		res, e := invokeEcho(t, f, `{"env": ["ZEGO_JOB_QUEUE_URL", "AWS_ENDPOINT_URL_SQS", "AWS_LAMBDA_FUNCTION_NAME"]}`)
		if res.FunctionError || e.Env["ZEGO_JOB_QUEUE_URL"] != q.URL || e.Env["AWS_ENDPOINT_URL_SQS"] != s.SecretsManagerURL() ||
			e.Env["AWS_LAMBDA_FUNCTION_NAME"] != "deleteconv-api" {
			t.Errorf("%s env %v, want the job queue %s, moto's endpoint, name deleteconv-api", f.Name, e.Env, q.URL)
		}
	}
	for _, f := range s.QueueFunctions() {
		_, e := invokeEcho(t, f, `{"env": ["ZEGO_JOB_QUEUE_URL", "AWS_LAMBDA_FUNCTION_NAME"]}`)
		if e.Env["ZEGO_JOB_QUEUE_URL"] != q.URL || e.Env["AWS_LAMBDA_FUNCTION_NAME"] != "deleteconv-queue" {
			t.Errorf("%s env %v, want the job queue, name deleteconv-queue", f.Name, e.Env)
		}
	}
}

// A function error, a timeout or an answer Lambda cannot use deletes
// nothing: the whole batch comes back after the visibility timeout.
func TestQueueReturnsTheWholeBatchOnAFunctionError(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"function error", `{"errorUntil": 2}`, "function error errorString"},
		{"timeout", `{"sleepUntil": 2}`, "function error " + devstack.TimedOutErrorType},
		{"bad answer", `{"badAnswer": true}`, "an answer Lambda does not accept as an SQSEventResponse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One instance, so that both messages share the batch.
			_, q := startQueue(t, devstack.QueueConfig{Instances: 1})
			ids, err := q.Send(t.Context(), devstack.Message{Body: `{"ok": true}`}, devstack.Message{Body: tc.body})
			if err != nil {
				t.Fatal(err)
			}
			drain(t, q)
			b := q.Batches()
			if len(b) == 0 || b[0].WholeBatch != tc.want || !slices.Equal(b[0].Failed, ids) {
				t.Fatalf("first batch %+v, want both messages left in the queue (%s)", b, tc.want)
			}
			if r := q.Receives(); r[ids[0]] != 2 {
				t.Errorf("the good message was delivered %d times, want 2 (again after the visibility timeout)", r[ids[0]])
			}
			if again := b[len(b)-1]; again.Messages[0].ReceiveCount != 2 {
				t.Errorf("last batch %+v, want the second delivery", again)
			}
		})
	}
}

func TestQueueFIFO(t *testing.T) {
	_, q := startQueue(t, devstack.QueueConfig{FIFO: true, ContentBasedDeduplication: true})
	if !strings.HasSuffix(q.ARN, ".fifo") || !strings.HasSuffix(q.DeadLetterARN, ".fifo") {
		t.Fatalf("queue %s, dead-letter queue %s: want FIFO queues", q.ARN, q.DeadLetterARN)
	}
	msgs := []devstack.Message{
		{Body: `{"n": 1}`, GroupID: "alice"}, {Body: `{"n": 2}`, GroupID: "alice"}, {Body: `{"n": 1}`, GroupID: "alice"},
		{Body: `{"n": 3}`, GroupID: "bob"},
	}
	if _, err := q.Send(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	drain(t, q)
	var alice []string
	for _, b := range q.Batches() {
		for i, rec := range loggedEvent(t, b).Records {
			g := rec.Attributes["MessageGroupId"]
			// moto leaves out SequenceNumber, which SQS and Lambda's events carry.
			if g != b.Messages[i].GroupID || rec.Attributes["MessageDeduplicationId"] == "" {
				t.Errorf("FIFO record attributes %v", rec.Attributes)
			}
			if g == "alice" {
				alice = append(alice, rec.Body)
			}
		}
	}
	if want := []string{`{"n": 1}`, `{"n": 2}`}; !slices.Equal(alice, want) {
		t.Errorf("group alice delivered %q, want %q in order, the repeated body dropped (content-based deduplication)", alice, want)
	}
}

func TestQueueConfigRefusesWhatLambdaRefuses(t *testing.T) {
	root, fn, zim := standIns(t)
	for _, qc := range []devstack.QueueConfig{
		{Function: devstack.FunctionConfig{Timeout: 10 * time.Second}, VisibilityTimeout: 5 * time.Second},
		{BatchSize: 11},
		{ContentBasedDeduplication: true},
	} {
		_, err := devstack.Start(t.Context(), devstack.Config{Root: root, Bootstrap: fn, ZIMServer: zim, LogDir: t.TempDir(), Queue: &qc})
		if err == nil {
			t.Errorf("Start with %+v: no error", qc)
		}
	}
}
