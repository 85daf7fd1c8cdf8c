// Command deleteconv is the AWS Lambda function (provided.al2023 bootstrap)
// that deletes ZEGOCLOUD ZIM conversations through ZEGO's DeleteConv API. It
// serves direct invocations, API Gateway (HTTP API 2.0 and REST 1.0) and SQS;
// see the README and the function contract for every input and answer.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/handler"
	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/logctx"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

func main() {
	cfg, cfgErr := config.Load(os.Getenv)
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	// logctx adds the request id and job id carried by a call's context to
	// every line, the ZIM client's and the secret cache's included.
	log := slog.New(logctx.NewHandler(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})))
	// Route the standard log package (and anything using it) through slog, so
	// every line the function writes is JSON.
	slog.SetDefault(log)
	lambda.Start(build(context.Background(), cfg, cfgErr, log, os.Stdout))
}

// build wires the handler. A configuration problem does not stop the
// process: every invocation then fails with it, naming the variable, instead
// of the runtime restarting the function in a loop.
//
// Metric lines go to stdout, beside the logs, where CloudWatch extracts them.
func build(ctx context.Context, cfg config.Config, cfgErr error, log *slog.Logger, stdout io.Writer) *handler.Handler {
	// lambdacontext.FunctionName is AWS_LAMBDA_FUNCTION_NAME, read by the runtime library.
	metrics := outcome.NewMetrics(stdout, outcome.WithFunctionName(lambdacontext.FunctionName))
	if cfgErr != nil {
		log.Error("configuration error", "error", cfgErr.Error())
		return handler.New(nil, log, metrics, cfg.CallerClaim, cfgErr)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("AWS SDK configuration error", "error", err.Error())
		return handler.New(nil, log, metrics, cfg.CallerClaim, &config.Error{Variable: "AWS_REGION", Rule: "and the AWS SDK's settings must be valid: " + err.Error()})
	}
	cache := secret.NewCache(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID, cfg.SecretTTL, secret.WithLogger(log))
	client, err := zim.New(cache,
		zim.WithBaseURL(cfg.APIURL),
		zim.WithRateLimit(cfg.RateLimit),
		zim.WithLogger(log),
	)
	if err != nil {
		log.Error("ZIM client configuration error", "error", err.Error())
		return handler.New(nil, log, metrics, cfg.CallerClaim, &config.Error{Variable: "ZEGO_API_URL", Rule: "is invalid: " + err.Error()})
	}
	warmUp(ctx, cache, client, initWarmUp)
	// Jobs go on through SQS: the same AWS settings (AWS_ENDPOINT_URL_SQS for a local SQS).
	sender := job.NewSQSSender(sqs.NewFromConfig(awsCfg))
	return handler.New(client, log, metrics, cfg.CallerClaim, nil, handler.WithJobQueue(sender, cfg.JobQueueURL), handler.WithStaleCount(cache.StaleServed))
}

// initWarmUp bounds how long init waits for the secret and the connection to
// ZEGO. Both are needed by the first call, so waiting costs an on-demand cold
// start nothing; with provisioned concurrency it moves them ahead of the call.
const initWarmUp = 2 * time.Second

// warmUp fetches the secret and opens the connection to ZEGO at the same
// time, since neither depends on the other. Neither can fail init: a fetch
// still in flight when the time is up goes on in the background and the first
// call joins it (or, if the environment was frozen past the fetch's own
// timeout, starts a new one); a failed warm-up only means the first call does
// the work itself.
func warmUp(ctx context.Context, cache *secret.Cache, client *zim.Client, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = cache.Credentials(ctx) })
	wg.Go(func() { _ = client.Preconnect(ctx) })
	wg.Wait()
}
