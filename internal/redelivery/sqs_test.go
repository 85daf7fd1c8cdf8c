package redelivery

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

// One moto_server serves the package's tests, each with queues of its own
// names; it starts on first use.
var shared motoserver.Shared

func TestMain(m *testing.M) {
	testenv.Require(testenv.MotoServer)
	shared.RunTests(m)
}

// motoSQS is an SQS client of the shared moto_server.
func motoSQS(t *testing.T) *sqs.Client {
	t.Helper()
	cfg, err := shared.Server(t).AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(cfg)
}

var queueSeq atomic.Int64

func createQueue(t *testing.T, c *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	// Unique on the shared server, so that -count=N runs do not collide.
	fifo := strings.HasSuffix(name, ".fifo")
	name = fmt.Sprintf("%s-%d", strings.TrimSuffix(name, ".fifo"), queueSeq.Add(1))
	if fifo {
		name += ".fifo"
	}
	out, err := c.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// receiveAll receives what is visible, by body.
func receiveAll(t *testing.T, c *sqs.Client, url string) map[string]string {
	t.Helper()
	got, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range got.Messages {
		out[aws.ToString(m.Body)] = aws.ToString(m.ReceiptHandle)
		if a, ok := m.MessageAttributes[ReasonAttribute]; ok {
			out[aws.ToString(m.Body)] = aws.ToString(a.DataType) + " " + aws.ToString(a.StringValue)
		}
	}
	return out
}

// TestSQSChangeVisibility: of twelve received messages hidden for an hour,
// the eleven whose visibility is changed to 0 (two batch requests) show again
// at once; the twelfth stays hidden.
func TestSQSChangeVisibility(t *testing.T) {
	t.Parallel()
	c := motoSQS(t)
	url := createQueue(t, c, "q", map[string]string{"VisibilityTimeout": "3600"})
	var bodies []string
	for i := range 12 {
		b := string(rune('a' + i))
		bodies = append(bodies, b)
		if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	handles := map[string]string{}
	for len(handles) < len(bodies) {
		got := receiveAll(t, c, url)
		if len(got) == 0 {
			t.Fatalf("received %d of %d messages", len(handles), len(bodies))
		}
		for b, h := range got {
			handles[b] = h
		}
	}
	var changes []Visibility
	for _, b := range bodies[:11] {
		changes = append(changes, Visibility{ReceiptHandle: handles[b], Timeout: 0})
	}
	s := NewSQS(c)
	if err := s.ChangeVisibility(t.Context(), url, changes); err != nil {
		t.Fatal(err)
	}
	var visible []string
	for {
		got := receiveAll(t, c, url)
		if len(got) == 0 {
			break
		}
		for b := range got {
			visible = append(visible, b)
		}
	}
	slices.Sort(visible)
	if !slices.Equal(visible, bodies[:11]) {
		t.Errorf("visible after the change: %v, want a to k (l was not changed)", visible)
	}
	if err := s.ChangeVisibility(t.Context(), url, []Visibility{{ReceiptHandle: "not-a-handle", Timeout: time.Minute}}); err == nil {
		t.Error("a change SQS refused returned no error")
	}
}

func TestSQSSendDeadLetter(t *testing.T) {
	t.Parallel()
	c := motoSQS(t)
	tests := []struct {
		name  string
		queue string
		attrs map[string]string
		m     DeadLetter
	}{
		{"standard", "dlq", nil, DeadLetter{Body: `{"FromUserId":"u"}`, Reason: "invalid_request: ConvId is required"}},
		{"FIFO", "dlq.fifo", map[string]string{"FifoQueue": "true"}, DeadLetter{Body: `not JSON`, Reason: "invalid_request: not a JSON object", GroupID: "G", DeduplicationID: "m-1"}},
		{"FIFO without group", "dlq2.fifo", map[string]string{"FifoQueue": "true"}, DeadLetter{Body: `{}`, Reason: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := createQueue(t, c, tt.queue, tt.attrs)
			tt.m.QueueURL = url
			if err := NewSQS(c).SendDeadLetter(t.Context(), tt.m); err != nil {
				t.Fatal(err)
			}
			got := receiveAll(t, c, url)
			if want := "String " + Reason(tt.m.Reason); len(got) != 1 || got[tt.m.Body] != want {
				t.Errorf("dead-letter queue holds %v, want %q with %q", got, tt.m.Body, want)
			}
		})
	}
}
