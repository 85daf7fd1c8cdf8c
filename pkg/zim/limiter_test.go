package zim

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// scriptedLimiter answers Wait with its errors in turn (nil once they run
// out) and counts the calls.
type scriptedLimiter struct {
	errs  []error
	calls atomic.Int32
}

func (l *scriptedLimiter) Wait(ctx context.Context) error {
	n := int(l.calls.Add(1))
	if n <= len(l.errs) {
		return l.errs[n-1]
	}
	return ctx.Err()
}

// TestWithLimiter: a Limiter given to the Client replaces its own, is asked
// before every attempt (retries included), and its errors keep the meaning
// of the Client's own limiter's: no slot before the deadline is ErrThrottled
// on a first attempt and the last answer on a retry; an ended context is the
// context's error.
func TestWithLimiter(t *testing.T) {
	t.Parallel()
	noSlot := errors.New("no slot before the deadline")
	tests := []struct {
		name      string
		script    []answer
		limiter   []error
		cancelled bool
		want      error
		notWant   error
		attempts  int // requests that reached ZEGO
		waits     int32
	}{
		{name: "every attempt waits", script: []answer{code(1), code(1), code(0)}, want: nil, attempts: 3, waits: 3},
		{name: "no slot for the first attempt", limiter: []error{noSlot}, want: ErrThrottled, notWant: noSlot, attempts: 0, waits: 1},
		{name: "no slot for a retry", script: []answer{code(1)}, limiter: []error{nil, noSlot}, want: ErrTemporary, notWant: ErrThrottled, attempts: 1, waits: 2},
		{name: "context ended", limiter: []error{context.Canceled}, cancelled: true, want: context.Canceled, notWant: ErrThrottled, attempts: 0, waits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake := newFake(tt.script...)
				l := &scriptedLimiter{errs: tt.limiter}
				// WithRateLimit(0.001) would space attempts 17 minutes apart: it is ignored.
				c := memClient(t, fake, WithRateLimit(0.001), WithLimiter(l), WithRetry(noWait))
				ctx, cancel := context.WithCancel(t.Context())
				if tt.cancelled {
					cancel()
				}
				defer cancel()
				start := time.Now()
				_, err := c.DeleteConversation(ctx, testReq)
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if tt.notWant != nil && errors.Is(err, tt.notWant) {
					t.Errorf("err = %v also matches %v", err, tt.notWant)
				}
				if n := len(fake.requests()); n != tt.attempts {
					t.Errorf("%d requests reached ZEGO, want %d", n, tt.attempts)
				}
				if got := l.calls.Load(); got != tt.waits {
					t.Errorf("Wait called %d times, want %d", got, tt.waits)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("call took %v of fake time; the Client's own limiter was used", d)
				}
			})
		})
	}
}

func TestWithLimiterNil(t *testing.T) {
	t.Parallel()
	if _, err := New(testCreds, WithLimiter(nil)); err == nil {
		t.Fatal("WithLimiter(nil): no error")
	}
}
