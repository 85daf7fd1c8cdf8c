package zim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
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
}

// DefaultRetryPolicy is what New uses without WithRetry: at most 4 attempts,
// 100ms to 2s between them, at least 1s after a rate-limit answer.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:           4,
	MinBackoff:            100 * time.Millisecond,
	MaxBackoff:            2 * time.Second,
	RateLimitedMinBackoff: time.Second,
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return errors.New("zim: RetryPolicy.MaxAttempts must be at least 1")
	case p.MinBackoff < 0 || p.MaxBackoff < 0 || p.RateLimitedMinBackoff < 0:
		return errors.New("zim: RetryPolicy backoffs must not be negative")
	case p.MaxBackoff < p.MinBackoff:
		return errors.New("zim: RetryPolicy.MaxBackoff must not be less than MinBackoff")
	}
	return nil
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
