// Package handler serves the function's triggers from one raw-JSON entry
// point: it tells a direct invocation, API Gateway (HTTP API 2.0 and REST
// 1.0) and SQS apart, runs each request, and answers the way its trigger
// expects.
package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zim-deleteconv/zim-deleteconv/internal/budget"
	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/logctx"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// ZIM is what the handler needs of the ZIM server API (*zim.Client): what a
// job needs, which includes single deletions.
type ZIM = job.ZIM

// Handler serves every trigger of the contract from one raw-JSON entry point.
type Handler struct {
	zim         ZIM
	log         *slog.Logger
	metrics     *outcome.Metrics
	callerClaim string
	// setupErr, when set, is a configuration problem found at start-up: every
	// invocation fails with it instead of the process crashing in a loop.
	setupErr error
	// jobWorkers bounds the concurrent deletions of one AllConversations job
	// and sqsWorkers the records of one batch in flight; the rate limiter inside
	// the zim client decides the pace.
	jobWorkers int
	sqsWorkers int
	// sender continues unfinished jobs through a queue: the SQS record's own,
	// or queueURL (ZEGO_JOB_QUEUE_URL) for HTTP and direct invoke.
	sender   job.Sender
	queueURL string
	// staleServed is the secret cache's running count of calls answered with
	// credentials past their TTL; staleSeen is how many were already reported.
	staleServed func() int
	staleSeen   atomic.Int64
	// tableErrors is the rate budget's running count of failed table calls;
	// tableSeen is how many were already reported.
	tableErrors func() int
	tableSeen   atomic.Int64
	// budgetWaits hands over how long each call waited for its budget slot.
	budgetWaits func() []time.Duration
	// registry keeps one job per user and the jobs' status (nil: no
	// ZEGO_STATE_TABLE); creds tells the AppId its items are keyed by.
	registry Registry
	creds    zimCredentials
	// redelivery backs failed SQS records off and moves invalid ones to the
	// dead-letter queue (sqs.go); zero: neither.
	redelivery redeliverySettings
	sqsMemory  sqsMemory
	// late holds counts that arrived after their invocation was flushed; the
	// next invocation writes them.
	late outcome.Counts
}

// Option configures a Handler.
type Option func(*Handler)

// WithJobQueue lets AllConversations jobs that one invocation cannot finish
// go on through SQS: an SQS record's job to the queue it came from, an HTTP
// or direct invocation's to queueURL (empty: those answer "Complete": false).
func WithJobQueue(s job.Sender, queueURL string) Option {
	return func(h *Handler) { h.sender, h.queueURL = s, queueURL }
}

// WithStaleCount reports, as an EMF count per invocation, how often the
// secret cache served credentials past their TTL (served is its running total).
func WithStaleCount(served func() int) Option {
	return func(h *Handler) { h.staleServed = served }
}

// WithBudgetErrors reports, as an EMF count per invocation, how many calls
// to the shared rate budget's table failed (total is its running total).
func WithBudgetErrors(total func() int) Option {
	return func(h *Handler) { h.tableErrors = total }
}

// WithBudgetWaits reports, as EMF values per invocation, how long each call
// waited for its rate budget slot (waits hands over those since its last call).
func WithBudgetWaits(waits func() []time.Duration) Option {
	return func(h *Handler) { h.budgetWaits = waits }
}

// New builds a Handler. setupErr (a configuration error) may be nil.
func New(z ZIM, log *slog.Logger, metrics *outcome.Metrics, callerClaim string, setupErr error, opts ...Option) *Handler {
	h := &Handler{zim: z, log: log, metrics: metrics, callerClaim: callerClaim, setupErr: setupErr, jobWorkers: 4, sqsWorkers: 10}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Invoke implements lambda.Handler: it detects the trigger from the raw event,
// then answers the way that trigger expects.
func (h *Handler) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	inv := &invocation{h: h}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv.requestID = lc.AwsRequestID
		// Every line logged with ctx (the client's retries, the secret
		// cache's warnings) carries the request id.
		ctx = logctx.With(ctx, slog.String("requestId", inv.requestID))
	}
	defer func() {
		if p := recover(); p != nil {
			// A panic is a bug; answer with a clear function error rather than
			// letting the runtime print a stack trace to the caller.
			out, err = nil, invokeError(outcome.InternalError, outcome.Describe(inv.panicked(p)))
		}
		inv.mu.Lock()
		inv.flushed = true
		inv.mu.Unlock()
		h.metrics.Flush(&inv.counts)
		h.metrics.Flush(&h.late)
		h.flushStale()
		h.metrics.FlushJobs(int(inv.rounds.Load()), int(inv.completed.Load()))
		h.flushBudgetErrors()
		if h.budgetWaits != nil {
			h.metrics.FlushBudgetWaits(h.budgetWaits())
		}
	}()
	work, cancel := workContext(ctx)
	defer cancel()

	switch kind, records := detect(payload); kind {
	case kindSQS:
		return inv.sqs(ctx, work, records)
	case kindHTTPAPI:
		return inv.httpAPI(work, payload)
	case kindREST:
		return inv.restAPI(work, payload)
	case kindDirect:
		return inv.direct(work, payload)
	default:
		msg := "unsupported event: expected a request object {\"FromUserId\", \"ConvId\", \"ConvType\"}, an API Gateway proxy event (HTTP API 2.0 or REST 1.0) or an SQS event"
		h.log.Warn("unsupported event", "requestId", inv.requestID, "outcome", outcome.InvalidRequest)
		inv.count(outcome.InvalidRequest, nil)
		return nil, invokeError(outcome.InvalidRequest, msg)
	}
}

// flushStale writes how many calls were served with stale credentials since
// the last invocation that reported them.
func (h *Handler) flushStale() {
	if h.staleServed == nil {
		return
	}
	total := int64(h.staleServed())
	if seen := h.staleSeen.Swap(total); total > seen {
		h.metrics.FlushStale(int(total - seen))
	}
}

// flushBudgetErrors writes how many budget table calls failed since the last
// invocation that reported them.
func (h *Handler) flushBudgetErrors() {
	if h.tableErrors == nil {
		return
	}
	total := int64(h.tableErrors())
	if seen := h.tableSeen.Swap(total); total > seen {
		h.metrics.FlushBudgetErrors(int(total - seen))
	}
}

// workContext is ctx with a deadline a little before Lambda's, so the handler
// still has time to answer (and report unfinished SQS records) when work is
// cut short. Calls cut short return at once, so 1% of the timeout (100 ms to
// 250 ms) is enough, and a job keeps most of the invocation for its work.
func workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(max(time.Until(deadline)/100, 100*time.Millisecond), 250*time.Millisecond)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// invocation is the state of one Invoke call.
type invocation struct {
	h         *Handler
	requestID string
	counts    outcome.Counts
	// flushed: counts are written; a count that comes later (a job's
	// conversation ending after an SQS batch answered at its deadline) goes
	// to the handler's late counts.
	mu      sync.Mutex
	flushed bool
	// onSuccess, if set, is told of every call that succeeded (an SQS
	// batch's early stop). It must not block.
	onSuccess func()
	// rounds counts the job rounds this invocation ran, completed the jobs
	// that ended complete, for the jobs' metrics.
	rounds, completed atomic.Int64
}

// result is how one request ended.
type result struct {
	outcome outcome.Outcome
	resp    *zim.Response // ZEGO's last answer, nil if none was made
	err     error
	job     *job.Summary // AllConversations requests only
	// resumable: the job stopped with work left after progress, so the same
	// request continues it. Without progress (or at the round cap) a job's
	// timeout is answered like any other.
	resumable bool
}

// process performs one valid request of an HTTP or direct invocation.
func (inv *invocation) process(ctx context.Context, req request.Request) result {
	return inv.processFrom(ctx, req, nil)
}

// processFrom performs one valid request; rec is the SQS record it came in,
// nil for HTTP and direct invocations. It runs on worker goroutines too,
// where a panic would end the process: it is recovered here as well.
func (inv *invocation) processFrom(ctx context.Context, req request.Request, rec *events.SQSMessage) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{outcome: outcome.InternalError, err: inv.panicked(p)}
		}
	}()
	if err := inv.h.setupErr; err != nil {
		return result{outcome: outcome.ConfigurationError, err: err}
	}
	if rec != nil { // the client's lines name the record they work for
		ctx = logctx.With(ctx, slog.String("messageId", rec.MessageId))
	}
	if req.All {
		return inv.deleteAll(ctx, req, rec)
	}
	if rec == nil {
		// Someone waits for this answer: its call goes before queue work
		// and jobs in the shared rate budget.
		ctx = budget.WithPriority(ctx, budget.Urgent)
	}
	resp, err := inv.h.zim.DeleteConversation(ctx, req.Delete)
	return result{outcome: outcome.Classify(ctx, err), resp: resp, err: err}
}

// panicked logs a recovered panic with its stack and returns the error the
// caller sees (without the stack).
func (inv *invocation) panicked(p any) error {
	inv.h.log.Error("panic while handling an event", "requestId", inv.requestID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return fmt.Errorf("internal error while handling the event; see the function's logs (request id %s)", inv.requestID)
}

// record logs one request outcome and counts it for the metrics.
func (inv *invocation) record(trigger, messageID string, req request.Request, r result) {
	attrs := []slog.Attr{
		slog.String("requestId", inv.requestID),
		slog.String("trigger", trigger),
		slog.String("outcome", string(r.outcome)),
	}
	if messageID != "" {
		attrs = append(attrs, slog.String("messageId", messageID))
	}
	if req.FromUserID != "" {
		attrs = append(attrs, slog.String("fromUserId", req.FromUserID))
	}
	if req.All {
		attrs = append(attrs, slog.Bool("allConversations", true))
	} else if req.Delete.ConvID != "" {
		attrs = append(attrs, slog.String("convId", req.Delete.ConvID), slog.Int("convType", int(req.Delete.ConvType)))
	}
	if r.resp != nil {
		attrs = append(attrs,
			slog.Int("zegoCode", r.resp.Code),
			slog.String("zegoRequestId", r.resp.RequestID),
			slog.Int("attempts", r.resp.Attempts),
			slog.Float64("latencyMs", outcome.Millis(r.resp.Latency)))
	}
	if r.job != nil {
		attrs = append(attrs, slog.String("jobId", r.job.JobID), slog.Int("round", r.job.Round), slog.Any("job", r.job))
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("error", outcome.Describe(r.err)))
	}
	level := slog.LevelInfo
	switch {
	case r.outcome.Success():
	case r.outcome == outcome.ConfigurationError || r.outcome == outcome.UpstreamError:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	inv.h.log.LogAttrs(context.Background(), level, "request outcome", attrs...)
	if r.job == nil { // a job counts its conversations one by one
		inv.count(r.outcome, r.resp)
	}
}

func (inv *invocation) count(o outcome.Outcome, resp *zim.Response) {
	if o.Success() && inv.onSuccess != nil {
		inv.onSuccess()
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.flushed {
		inv.h.late.Add(o, resp)
		return
	}
	inv.counts.Add(o, resp)
}

// direct answers a direct invocation: the success body, or a function error
// whose errorType is the outcome class.
func (inv *invocation) direct(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := request.ParseFrom(payload, request.FromDirect)
	if err == nil && req.Status {
		return inv.directStatus(ctx, req)
	}
	var r result
	if err != nil {
		r = result{outcome: outcome.InvalidRequest, err: err}
	} else {
		r = inv.process(ctx, req)
	}
	inv.record("direct", "", req, r)
	if r.job != nil && (r.outcome.Success() || r.outcome == outcome.Timeout && r.resumable) {
		return json.Marshal(r.job)
	}
	if !r.outcome.Success() {
		return nil, invokeError(r.outcome, outcome.Describe(r.err))
	}
	return json.Marshal(outcome.NewSuccessBody(r.outcome, r.resp))
}

// invokeError is a Lambda function error whose errorType is the outcome class.
func invokeError(o outcome.Outcome, msg string) error {
	return messages.InvokeResponse_Error{Type: o.ErrorType(), Message: msg}
}
