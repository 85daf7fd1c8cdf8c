package zim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// RetryPolicy says how often and how patiently the client retries transient
// failures (see Retryable).
//
// The n-th retry waits a random duration in [max(floor, c/2), c], where
// c = min(ceiling, floor·2ⁿ): exponential growth with equal jitter, so that
// callers failing together do not retry together. The floor is MinBackoff, or
// RateLimitedMinBackoff after a rate-limit answer; the ceiling is MaxBackoff, or
// RateLimitedMinBackoff if that is larger.
//
// RetryBudget and RetryBudgetRatio bound backoff retries to a share of the
// traffic, in the spirit of gRPC's retry throttling and the AWS SDK's retry
// token bucket: during a brown-out, retries of failing requests must not take
// every rate-limit slot from fresh ones. Each Client keeps a bucket of
// RetryBudget tokens, full at New. A backoff retry takes one token; with none
// left, the retryable error is returned at once. Every attempt that ZEGO
// answers with success or a code that is not retryable puts back
// RetryBudgetRatio tokens, and a retry answered so gives its own token back,
// up to RetryBudget. So retries that keep failing are at most about
// RetryBudgetRatio per healthy answer, plus RetryBudget in a row. Retries of
// rate-limit answers take no token: the limiter and RateLimitedMinBackoff
// pace them, and ZEGO asked to come back later rather than failed.
type RetryPolicy struct {
	// MaxAttempts is the most HTTP requests one call makes, retries of every kind
	// included (1 disables retries).
	MaxAttempts int
	// MinBackoff is the floor of the wait before a retry.
	MinBackoff time.Duration
	// MaxBackoff is the ceiling of the wait before a retry.
	MaxBackoff time.Duration
	// RateLimitedMinBackoff is the floor after ZEGO said "rate limited" (or HTTP
	// 429): its limit is per second, so retrying sooner mostly fails again.
	RateLimitedMinBackoff time.Duration
	// RetryBudget is the size of the Client's retry token bucket: how many
	// failing retries may follow each other with no healthy answer between
	// them. 0 disables the budget (every retryable failure is retried up to
	// MaxAttempts).
	RetryBudget int
	// RetryBudgetRatio is the tokens each healthy answer puts back, so the
	// share of retries in steady state (0.1: one failing retry per ten healthy
	// answers). It must be greater than 0 when RetryBudget is set.
	RetryBudgetRatio float64
}

// DefaultRetryPolicy is what New uses without WithRetry: at most 4 attempts,
// 100ms to 2s between them, at least 1s after a rate-limit answer; a retry
// budget of 10 tokens, refilled by 0.1 per healthy answer.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:           4,
	MinBackoff:            100 * time.Millisecond,
	MaxBackoff:            2 * time.Second,
	RateLimitedMinBackoff: time.Second,
	RetryBudget:           10,
	RetryBudgetRatio:      0.1,
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return errors.New("zim: RetryPolicy.MaxAttempts must be at least 1")
	case p.MinBackoff < 0 || p.MaxBackoff < 0 || p.RateLimitedMinBackoff < 0:
		return errors.New("zim: RetryPolicy backoffs must not be negative")
	case p.MaxBackoff < p.MinBackoff:
		return errors.New("zim: RetryPolicy.MaxBackoff must not be less than MinBackoff")
	case p.RetryBudget < 0:
		return errors.New("zim: RetryPolicy.RetryBudget must not be negative")
	case p.RetryBudgetRatio < 0 || math.IsNaN(p.RetryBudgetRatio) || math.IsInf(p.RetryBudgetRatio, 0):
		return errors.New("zim: RetryPolicy.RetryBudgetRatio must be a finite number, not negative")
	case p.RetryBudget > 0 && p.RetryBudgetRatio == 0:
		// A spent bucket would then stay empty for the Client's whole life.
		return errors.New("zim: RetryPolicy.RetryBudgetRatio must be greater than 0 when RetryBudget is set")
	}
	return nil
}

// retryBudget is a Client's retry token bucket (see RetryPolicy). A nil
// *retryBudget is no budget: every retry is allowed.
type retryBudget struct {
	size      float64
	perAnswer float64 // RetryBudgetRatio

	mu     sync.Mutex
	tokens float64
}

func newRetryBudget(p RetryPolicy) *retryBudget {
	if p.RetryBudget == 0 {
		return nil
	}
	size := float64(p.RetryBudget)
	return &retryBudget{size: size, perAnswer: p.RetryBudgetRatio, tokens: size}
}

// take spends a token on a retry; false when there is none left.
func (b *retryBudget) take() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// healthy credits an attempt ZEGO answered with success or a final code.
func (b *retryBudget) healthy() {
	if b != nil {
		b.add(b.perAnswer)
	}
}

// refund gives back the token of a retry that was answered healthily or never sent.
func (b *retryBudget) refund() {
	if b != nil {
		b.add(1)
	}
}

func (b *retryBudget) add(n float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.size, b.tokens+n)
}

// healthyAnswer reports whether an attempt's outcome shows ZEGO serving: an
// answer with Code 0, or with a code no retry can change.
func healthyAnswer(err error) bool {
	if err == nil {
		return true
	}
	var ae *APIError
	return errors.As(err, &ae) && !Retryable(err)
}

// backoff returns the wait before retry number n (1 for the first retry).
func (p RetryPolicy) backoff(n int, rateLimited bool) time.Duration {
	floor, ceiling := p.MinBackoff, p.MaxBackoff
	if rateLimited {
		floor = p.RateLimitedMinBackoff
		ceiling = max(ceiling, floor)
	}
	c := floor
	for i := 0; i < n && c < ceiling; i++ {
		c *= 2
	}
	c = min(c, ceiling)
	half := c / 2
	var jitter time.Duration
	if half > 0 {
		jitter = rand.N(c - half + 1)
	}
	return max(floor, half+jitter)
}

// Retryable reports whether err is worth another attempt after a backoff: ZEGO's
// rate limits (ErrRateLimited), its temporary failures (ErrTemporary), no answer
// at all (ErrTransport), and answers that were not the JSON envelope when the
// HTTP status was 5xx or 429. Everything else is final.
//
// Signature errors are not Retryable: the client re-signs once after
// ErrSignatureExpired and refreshes the credentials once after
// ErrSignatureInvalid, retrying at once, without a backoff.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrTemporary) || errors.Is(err, ErrTransport) {
		return true
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatus >= 500 || re.HTTPStatus == http.StatusTooManyRequests
	}
	return false
}

// rateLimited reports whether err calls for the longer, rate-limit backoff.
func rateLimited(err error) bool {
	if errors.Is(err, ErrRateLimited) {
		return true
	}
	var re *ResponseError
	return errors.As(err, &re) && re.HTTPStatus == http.StatusTooManyRequests
}

// transportError wraps a failure to get an answer so that it matches ErrTransport
// while the underlying error (a *url.Error) stays reachable with errors.As.
func transportError(action string, err error) error {
	return fmt.Errorf("zim: %s: %w: %w", action, ErrTransport, err)
}

// attemptTimeout replaces the error of an HTTP client timeout when the caller's
// context is still live: it is a transport failure worth a retry, and must not
// match context.DeadlineExceeded, which callers read as "my deadline passed".
type attemptTimeout struct{ msg string }

func (e *attemptTimeout) Error() string   { return e.msg }
func (e *attemptTimeout) Timeout() bool   { return true }
func (e *attemptTimeout) Temporary() bool { return true }
