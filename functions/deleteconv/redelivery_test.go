package main

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestWiringRedelivery builds the handler as main does, with the backoff and
// the dead-letter queue set and SQS in moto: a record that failed is hidden
// for its backoff (its queue would otherwise show it again at once), and an
// invalid one is in the dead-letter queue with its reason.
func TestWiringRedelivery(t *testing.T) {
	moto, _, create := motoForFunction(t)
	create("zim/good", `{"AppId": 1234567890, "ServerSecret": "`+testSecret+`"}`)
	awsCfg, err := moto.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(awsCfg)
	newQueue := func(name, visibility string) string {
		out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name),
			Attributes: map[string]string{"VisibilityTimeout": visibility}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	queueURL, dlqURL := newQueue("zim-deleteconv-queue", "0"), newQueue("zim-deleteconv-dlq", "30")

	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret))
	t.Cleanup(srv.Close)
	srv.Seed(testAppID, "alice", peer("bob"))
	srv.Inject(zimtest.Fault{Action: "DeleteConv", HTTPStatus: http.StatusInternalServerError, Times: 100})
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"ZEGO_SECRET_ID": "zim/good", "ZEGO_API_URL": srv.URL, "ZEGO_JOB_QUEUE_URL": queueURL,
			"ZEGO_DEAD_LETTER_QUEUE_URL": dlqURL, "ZEGO_BACKOFF_BASE": "10m", "ZEGO_BACKOFF_MAX": "1h"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	h := build(t.Context(), cfg, nil, slog.New(slog.NewJSONHandler(logs, nil)), logs)

	for _, b := range []string{body("alice", "bob", 0), `{"FromUserId": "alice"}`} {
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil || len(got.Messages) != 2 {
		t.Fatalf("received %v, %v", got, err)
	}
	var ev events.SQSEvent
	for _, m := range got.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv-queue", AWSRegion: "us-east-1"})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := h.Invoke(ctx, mustJSON(t, ev))
	var failedBody []string
	failed := decodeSQS(t, out, err)
	for _, r := range ev.Records {
		if slices.Contains(failed, r.MessageId) {
			failedBody = append(failedBody, r.Body)
			continue
		}
		// What Lambda does with a record not reported failed.
		if _, err := client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(r.ReceiptHandle)}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(failedBody, []string{body("alice", "bob", 0)}) {
		t.Fatalf("failed %v, want the record ZEGO failed (the invalid one is in the dead-letter queue)", failedBody)
	}
	again, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
	if err != nil || len(again.Messages) != 0 {
		t.Errorf("the queue shows %d messages again at once, want the failed one hidden for its backoff (%v)", len(again.Messages), err)
	}
	dl, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if err != nil || len(dl.Messages) != 1 {
		t.Fatalf("dead-letter queue holds %v, %v", dl, err)
	}
	reason := dl.Messages[0].MessageAttributes["DeadLetterReason"]
	if aws.ToString(dl.Messages[0].Body) != `{"FromUserId": "alice"}` || aws.ToString(reason.StringValue) != "invalid_request: ConvId is required" {
		t.Errorf("dead letter %s with reason %q", aws.ToString(dl.Messages[0].Body), aws.ToString(reason.StringValue))
	}
}
