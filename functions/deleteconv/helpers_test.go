package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// The wiring tests drive the handler build returns with a few events; the
// full event samples and answer checks live with the handler's own tests.

const (
	testAppID  uint32 = 1234567890
	testSecret        = "c0ffee00c0ffee00c0ffee00c0ffee00"
	rotatedKey        = "5ec2e75ec2e75ec2e75ec2e75ec2e7aa"
)

func peer(id string) zim.Conversation {
	return zim.Conversation{ConvID: id, ConvType: zim.ConvTypePeer}
}

func body(from, conv string, ct int) string {
	return fmt.Sprintf(`{"FromUserId":%q,"ConvId":%q,"ConvType":%d}`, from, conv, ct)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type sqsRecord struct{ id, body string }

func sqsEvent(t *testing.T, recs ...sqsRecord) []byte {
	var ev events.SQSEvent
	for _, r := range recs {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: r.id, Body: r.body, EventSource: "aws:sqs",
			EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv", AWSRegion: "us-east-1"})
	}
	return mustJSON(t, ev)
}

// sqsEventFrom is one record of the queue arn.
func sqsEventFrom(t *testing.T, arn, id, body string) []byte {
	return mustJSON(t, events.SQSEvent{Records: []events.SQSMessage{{MessageId: id, Body: body, EventSource: "aws:sqs",
		EventSourceARN: arn, AWSRegion: "us-east-1"}}})
}

type httpEvent struct{ method, path, body string }

func httpAPIEvent(t *testing.T, e httpEvent) []byte {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: e.method + " " + e.path, RawPath: e.path, Body: e.body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{Stage: "$default", RequestID: "wiring-test",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: e.method, Path: e.path}}}
	return mustJSON(t, ev)
}

func functionError(t *testing.T, err error) messages.InvokeResponse_Error {
	t.Helper()
	ie, ok := err.(messages.InvokeResponse_Error)
	if !ok {
		t.Fatalf("error %T %v is not a Lambda function error", err, err)
	}
	return ie
}

type apiAnswer struct{ status int }

func decodeHTTPAPI(t *testing.T, out []byte, err error) apiAnswer {
	t.Helper()
	if err != nil {
		t.Fatalf("API Gateway answers must not be function errors: %v", err)
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return apiAnswer{r.StatusCode}
}

func decodeSQS(t *testing.T, out []byte, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatalf("SQS answers must not be function errors (the whole batch would be retried): %v", err)
	}
	var r events.SQSEventResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}
