package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestWiringJobQueueThroughSQS builds the handler as main does, with
// ZEGO_JOB_QUEUE_URL and AWS_ENDPOINT_URL_SQS pointing at moto: a direct
// invocation hands a big job to the queue after its budget, and the message
// it sent, delivered as an SQS event, finishes the job.
func TestWiringJobQueueThroughSQS(t *testing.T) {
	moto, _, create := motoForFunction(t)
	t.Setenv("AWS_ENDPOINT_URL_SQS", moto.URL)
	create("zim/good", `{"AppId": 1234567890, "ServerSecret": "`+testSecret+`"}`)
	awsCfg, err := moto.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	queue := sqs.NewFromConfig(awsCfg)
	created, err := queue.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("zim-deleteconv-jobs")})
	if err != nil {
		t.Fatal(err)
	}
	queueURL := aws.ToString(created.QueueUrl)

	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret))
	t.Cleanup(srv.Close)
	var convs []zim.Conversation
	for i := range 40 {
		convs = append(convs, peer(fmt.Sprintf("c%02d", i)))
	}
	srv.Seed(testAppID, "alice", convs...)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"ZEGO_SECRET_ID": "zim/good", "ZEGO_API_URL": srv.URL, "ZEGO_RATE_LIMIT": "10",
			"ZEGO_JOB_QUEUE_URL": queueURL}[k]
	})
	if err != nil {
		t.Fatalf("config with moto's queue URL %s: %v", queueURL, err)
	}
	logs := &testutil.Buffer{}
	h := build(t.Context(), cfg, nil, slog.New(slog.NewJSONHandler(logs, nil)), logs)
	call := func(payload []byte) ([]byte, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		return h.Invoke(ctx, payload)
	}

	out, err := call([]byte(`{"FromUserId":"alice","AllConversations":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Outcome string
		JobID   string `json:"JobId"`
		Deleted int
	}
	if err := json.Unmarshal(out, &ans); err != nil || ans.Outcome != "accepted" || ans.Deleted == 0 || ans.Deleted == 40 {
		t.Fatalf("direct answer %s, want the job accepted with progress", out)
	}

	got, err := queue.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("queue holds %v, %v; want the continuation", got, err)
	}
	msg := got.Messages[0]
	req, err := request.Parse([]byte(aws.ToString(msg.Body)))
	if err != nil || req.Continuation == nil || req.Continuation.JobID != ans.JobID || req.Continuation.Round != 2 || req.Continuation.Deleted != ans.Deleted {
		t.Fatalf("continuation %s: %+v, %v", aws.ToString(msg.Body), req.Continuation, err)
	}
	if _, err := queue.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: msg.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}

	out, err = call(sqsEventFrom(t, "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv-jobs", aws.ToString(msg.MessageId), aws.ToString(msg.Body)))
	if failed := decodeSQS(t, out, err); len(failed) != 0 {
		t.Fatalf("round 2 failed: %v", failed)
	}
	if left := srv.Conversations(testAppID, "alice"); len(left) != 0 {
		t.Fatalf("%d conversations left after round 2", len(left))
	}
	got, err = queue.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
	if err != nil || len(got.Messages) != 0 {
		t.Fatalf("a finished job sent %v, %v", got.Messages, err)
	}
}
