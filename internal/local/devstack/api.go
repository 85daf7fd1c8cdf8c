package devstack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/time/rate"
)

// ErrTooManyRequests is Lambda's answer to a synchronous invoke when every
// instance its reserved concurrency allows is busy: HTTP 429,
// TooManyRequestsException, Reason ReservedFunctionConcurrentInvocationLimitExceeded.
// TryInvoke returns it; the invocation did not run.
var ErrTooManyRequests = errors.New("devstack: TooManyRequestsException (429): every api function instance is busy (ReservedFunctionConcurrentInvocationLimitExceeded)")

// Who refused an HTTP call without running the function (HTTPResult.Throttled).
const (
	// ThrottledByStage: the HTTP API stage's throttle (a token bucket of
	// RateBudget per second, burst RateBudget) answered 429.
	ThrottledByStage = "stage"
	// ThrottledByLambda: every api function instance was busy; Lambda
	// refused the invoke and API Gateway answered 500.
	ThrottledByLambda = "lambda"
)

// HTTPResult is what an HTTP caller of the stack's HTTP API gets back.
type HTTPResult struct {
	// StatusCode, Headers and Body are the HTTP answer: the function's
	// (its API Gateway response), or API Gateway's own when it refused the
	// call or the function failed.
	StatusCode int
	Headers    map[string]string
	Body       string
	// Throttled is "" when the function ran, else ThrottledByStage or
	// ThrottledByLambda.
	Throttled string
	// Invoke is the function's invocation when it ran, and Function the
	// name of the api instance that ran it ("" when throttled).
	Invoke   InvokeResult
	Function string
	// Latency is from the call to the answer, throttling included.
	Latency time.Duration
}

// apiPool hands each invocation a free api function instance: one invocation
// per emulator at a time, as one Lambda instance serves one at a time.
type apiPool struct {
	fns  []*Function
	free chan *Function
}

func newAPIPool(fns []*Function) *apiPool {
	p := &apiPool{fns: fns, free: make(chan *Function, len(fns))}
	for _, f := range fns {
		p.free <- f
	}
	return p
}

// acquire waits for a free instance.
func (p *apiPool) acquire(ctx context.Context) (*Function, error) {
	select {
	case f := <-p.free:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tryAcquire takes a free instance, or none at once.
func (p *apiPool) tryAcquire() *Function {
	select {
	case f := <-p.free:
		return f
	default:
		return nil
	}
}

func (p *apiPool) release(f *Function) { p.free <- f }

// APIFunctions are the api function's instances, one emulator each
// (Config.APIInstances).
func (s *Stack) APIFunctions() []*Function {
	if s.api == nil {
		return nil
	}
	return slices.Clone(s.api.fns)
}

// Invoke invokes the api function on a free instance, waiting for one when
// all are busy: a caller that retries Lambda's throttle until it gets
// through. TryInvoke is Lambda's own behaviour. See Function.Invoke for the
// result.
func (s *Stack) Invoke(ctx context.Context, event []byte) (InvokeResult, error) {
	if s.isClosed() || s.api == nil {
		return InvokeResult{}, errClosed
	}
	f, err := s.api.acquire(ctx)
	if err != nil {
		return InvokeResult{}, err
	}
	defer s.api.release(f)
	return f.Invoke(ctx, event)
}

// TryInvoke is a synchronous invoke of the api function as Lambda answers it
// with reserved concurrency: on a free instance, or ErrTooManyRequests at
// once when every instance is busy.
func (s *Stack) TryInvoke(ctx context.Context, event []byte) (InvokeResult, error) {
	if s.isClosed() || s.api == nil {
		return InvokeResult{}, errClosed
	}
	f := s.api.tryAcquire()
	if f == nil {
		return InvokeResult{}, ErrTooManyRequests
	}
	defer s.api.release(f)
	return f.Invoke(ctx, event)
}

// newStage is the HTTP API stage's default route throttle as the template
// sets it: ThrottlingRateLimit RateBudget per second, ThrottlingBurstLimit
// RateBudget, a token bucket.
func newStage(budget int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(budget), budget)
}

// CallHTTP is one HTTP API call (event is the API Gateway event the
// integration hands the function, e.g. events/apigw-http.json) the way a
// caller on the internet makes it: through the stage's throttle (429 Too
// Many Requests when its bucket is empty), then to a free api function
// instance. When every instance is busy Lambda throttles the invoke and API
// Gateway answers 500 Internal Server Error, as it does on AWS for a
// throttled Lambda proxy integration; a function error is a 500 too. The
// error is for a call that did not complete (emulator failure, ctx done).
func (s *Stack) CallHTTP(ctx context.Context, event []byte) (HTTPResult, error) {
	start := time.Now()
	res := HTTPResult{}
	done := func(status int, msg, throttled string) (HTTPResult, error) {
		res.StatusCode, res.Throttled = status, throttled
		res.Headers = map[string]string{"Content-Type": "application/json"}
		res.Body = fmt.Sprintf(`{"message":%q}`, msg)
		res.Latency = time.Since(start)
		return res, nil
	}
	if s.stage == nil || s.api == nil || s.isClosed() {
		return res, errClosed
	}
	if !s.stage.Allow() {
		return done(429, "Too Many Requests", ThrottledByStage)
	}
	f := s.api.tryAcquire()
	if f == nil {
		return done(500, "Internal Server Error", ThrottledByLambda)
	}
	inv, err := f.Invoke(ctx, event)
	s.api.release(f)
	if err != nil {
		return res, err
	}
	res.Invoke, res.Function = inv, f.Name
	var out struct {
		StatusCode      int               `json:"statusCode"`
		Headers         map[string]string `json:"headers"`
		Body            string            `json:"body"`
		IsBase64Encoded bool              `json:"isBase64Encoded"`
	}
	if inv.FunctionError || json.Unmarshal(inv.Body, &out) != nil || out.StatusCode == 0 {
		return done(500, "Internal Server Error", "")
	}
	if out.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(out.Body)
		if err != nil {
			return done(500, "Internal Server Error", "")
		}
		out.Body = string(b)
	}
	res.StatusCode, res.Headers, res.Body = out.StatusCode, out.Headers, out.Body
	res.Latency = time.Since(start)
	return res, nil
}

// RateBudget is the stack's ZEGO_RATE_BUDGET and stage throttle (Config.RateBudget).
func (s *Stack) RateBudget() int { return s.cfg.RateBudget }
