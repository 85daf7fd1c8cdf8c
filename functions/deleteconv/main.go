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
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/zim-deleteconv/zim-deleteconv/internal/budget"
	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/handler"
	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/logctx"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/redelivery"
	"github.com/zim-deleteconv/zim-deleteconv/internal/registry"
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
	// Jobs go on through SQS: the same AWS settings (AWS_ENDPOINT_URL_SQS for a local SQS).
	sqsClient := sqs.NewFromConfig(awsCfg)
	opts := []handler.Option{
		handler.WithJobQueue(job.NewSQSSender(sqsClient), cfg.JobQueueURL),
		handler.WithStaleCount(cache.StaleServed),
		// Failed SQS records: backoff, and the dead-letter queue for invalid ones.
		handler.WithRedelivery(redelivery.NewSQS(sqsClient),
			redelivery.Backoff{Base: cfg.BackoffBase, Max: cfg.BackoffMax}, cfg.DeadLetterQueueURL),
	}
	pace := zim.WithRateLimit(cfg.RateLimit)
	if cfg.StateTable != "" {
		b, err := rateBudget(awsCfg, cfg, log)
		if err != nil {
			log.Error("rate budget configuration error", "error", err.Error())
			return handler.New(nil, log, metrics, cfg.CallerClaim, &config.Error{Variable: "ZEGO_RATE_BUDGET", Rule: "and the floors do not fit: " + err.Error()})
		}
		pace = zim.WithLimiter(b)
		opts = append(opts, handler.WithBudgetErrors(b.TableErrors), handler.WithBudgetWaits(b.Waits))
	}
	client, err := zim.New(cache,
		zim.WithBaseURL(cfg.APIURL),
		pace,
		zim.WithLogger(log),
	)
	if err != nil {
		log.Error("ZIM client configuration error", "error", err.Error())
		return handler.New(nil, log, metrics, cfg.CallerClaim, &config.Error{Variable: "ZEGO_API_URL", Rule: "is invalid: " + err.Error()})
	}
	warmUp(ctx, cache, client, initWarmUp)
	if cfg.StateTable != "" {
		// One job per user and the jobs' status, in the shared table
		// (AWS_ENDPOINT_URL_DYNAMODB for a local DynamoDB); keyed by the
		// AppId of the credentials the client signs with.
		reg := registry.New(registry.NewDynamoDB(dynamodb.NewFromConfig(awsCfg), cfg.StateTable))
		opts = append(opts, handler.WithRegistry(reg, cache))
	}
	return handler.New(client, log, metrics, cfg.CallerClaim, nil, opts...)
}

// rateBudget is the instance's share of the stack's rate budget: its floor,
// and slots from the pool in the state table, through DynamoDB with the same
// AWS settings (AWS_ENDPOINT_URL_DYNAMODB for a local DynamoDB).
func rateBudget(awsCfg aws.Config, cfg config.Config, log *slog.Logger) (*budget.Budget, error) {
	// One attempt per call: the budget has its own timeout and breaker, and
	// the SDK's retries would only hide a failing table behind them.
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	set := budget.Settings{Rate: cfg.RateBudget, FloorTotal: cfg.RateFloorTotal, Floor: cfg.RateFloor}
	b, err := budget.New(budget.NewDynamoStore(db, cfg.StateTable), set, log)
	if err != nil {
		return nil, err
	}
	log.Debug("shared rate budget", "rateBudget", set.Rate, "floorTotal", set.FloorTotal, "floor", set.Floor, "poolSpacing", set.Spacing())
	return b, nil
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
