// Command echofn is a stand-in Lambda function for the devstack tests: it
// answers with the event and the environment variables the event asks for,
// logs a JSON line, and sleeps or fails on request. It also GETs the URLs
// that the environment variables named in "get" hold and answers with what
// came back, so that tests see the network the stack gave it. An SQS event gets an
// SQSEventResponse, each record's body saying what to do (see record).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Env     []string `json:"env"`
	Sleep   string   `json:"sleep"`
	Fail    string   `json:"fail"`
	Log     string   `json:"log"`
	Get     []string `json:"get"`
	Records []json.RawMessage
}

// record is an SQS record's body. Each "…Until": n applies while the
// record's ApproximateReceiveCount is below n (0: always).
type record struct {
	FailUntil  *int   `json:"failUntil"`  // report it in batchItemFailures
	ErrorUntil *int   `json:"errorUntil"` // fail the whole invocation
	SleepUntil *int   `json:"sleepUntil"` // sleep past any deadline
	BadAnswer  bool   `json:"badAnswer"`  // answer with an item that is not in the batch
	Sleep      string `json:"sleep"`      // sleep this long first
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (any, error) {
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		lc, _ := lambdacontext.FromContext(ctx)
		if len(ev.Records) > 0 {
			logger.Info("sqs event", "requestId", lc.AwsRequestID, "event", raw)
			return sqs(raw)
		}
		logger.Info(ev.Log, "requestId", lc.AwsRequestID)
		if ev.Sleep != "" {
			d, err := time.ParseDuration(ev.Sleep)
			if err != nil {
				return nil, err
			}
			time.Sleep(d) // deliberately ignores ctx: the emulator's own timeout is under test
		}
		if ev.Fail != "" {
			return nil, errors.New(ev.Fail)
		}
		env := map[string]string{}
		for _, k := range ev.Env {
			env[k] = os.Getenv(k)
		}
		got := map[string]fetched{}
		for _, k := range ev.Get {
			got[k] = get(ctx, os.Getenv(k))
		}
		deadline, _ := ctx.Deadline()
		return map[string]any{"env": env, "got": got, "requestId": lc.AwsRequestID, "deadlineIn": time.Until(deadline).Round(time.Second).String()}, nil
	})
}

func sqs(raw json.RawMessage) (any, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, m := range ev.Records {
		var r record
		_ = json.Unmarshal([]byte(m.Body), &r)
		n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
		applies := func(until *int) bool { return until != nil && (*until == 0 || n < *until) }
		if r.Sleep != "" {
			d, _ := time.ParseDuration(r.Sleep)
			time.Sleep(d)
		}
		switch {
		case applies(r.SleepUntil):
			time.Sleep(time.Hour)
		case applies(r.ErrorUntil):
			return nil, errors.New("record " + m.MessageId + " fails the invocation")
		case r.BadAnswer:
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-in-the-batch"}}}, nil
		case applies(r.FailUntil):
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

// fetched is what a GET returned.
type fetched struct {
	Status int    `json:"status"`
	Proto  string `json:"proto"`
	Error  string `json:"error"`
}

// get GETs url with the default client: the system's roots (SSL_CERT_FILE)
// and HTTP/2 where the server offers it.
func get(ctx context.Context, url string) fetched {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fetched{Error: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fetched{Error: err.Error()}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return fetched{Status: resp.StatusCode, Proto: resp.Proto}
}
