// Command echofn is a stand-in Lambda function for the devstack tests: it
// answers with the event and the environment variables the event asks for,
// logs a JSON line, and sleeps or fails on request.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Env   []string `json:"env"`
	Sleep string   `json:"sleep"`
	Fail  string   `json:"fail"`
	Log   string   `json:"log"`
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (map[string]any, error) {
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		lc, _ := lambdacontext.FromContext(ctx)
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
		deadline, _ := ctx.Deadline()
		return map[string]any{"env": env, "requestId": lc.AwsRequestID, "deadlineIn": time.Until(deadline).Round(time.Second).String()}, nil
	})
}
