package devstack

import (
	"errors"
	"testing"
	"testing/synctest"
)

// The stage's token bucket answers 429 once RateBudget calls have come in
// the same instant, and a call that passes it while every instance is busy
// meets Lambda's throttle, which API Gateway answers with 500. Neither runs
// the function.
func TestCallHTTPThrottles(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		busy := &Function{Name: "api-1"}
		s := &Stack{api: newAPIPool([]*Function{busy}), stage: newStage(2)}
		if f := s.api.tryAcquire(); f != busy {
			t.Fatalf("tryAcquire = %v, want the only instance", f)
		}
		if _, err := s.TryInvoke(t.Context(), []byte(`{}`)); !errors.Is(err, ErrTooManyRequests) {
			t.Errorf("TryInvoke with every instance busy: %v, want ErrTooManyRequests", err)
		}
		want := []struct {
			status    int
			throttled string
		}{
			{500, ThrottledByLambda}, {500, ThrottledByLambda}, // the burst of 2 passes the stage
			{429, ThrottledByStage},
		}
		for i, w := range want {
			res, err := s.CallHTTP(t.Context(), []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != w.status || res.Throttled != w.throttled || res.Invoke.RequestID != "" {
				t.Errorf("call %d: %d %q %s (invoked %q), want %d %q", i, res.StatusCode, res.Throttled, res.Body, res.Invoke.RequestID, w.status, w.throttled)
			}
		}
	})
}

func TestAPIPoolHandsOutEachInstanceOnce(t *testing.T) {
	t.Parallel()
	a, b := &Function{Name: "api-1"}, &Function{Name: "api-2"}
	p := newAPIPool([]*Function{a, b})
	got := map[*Function]bool{p.tryAcquire(): true, p.tryAcquire(): true}
	if !got[a] || !got[b] {
		t.Errorf("two acquires gave %v, want both instances", got)
	}
	if f := p.tryAcquire(); f != nil {
		t.Errorf("a third acquire gave %s, want none", f.Name)
	}
	p.release(a)
	f, err := p.acquire(t.Context())
	if err != nil || f != a {
		t.Errorf("acquire after release = %v, %v, want the released instance", f, err)
	}
}
