package zim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var allClasses = []error{
	ErrRateLimited, ErrTemporary, ErrSignatureExpired, ErrSignatureInvalid, ErrConfiguration,
	ErrCommonParameter, ErrInvalidParameter, ErrConversationNotFound, ErrUserNotFound, ErrUnknownCode,
	ErrBadResponse, ErrTransport, ErrThrottled,
}

// TestReturnCodes: every return code of ZEGO's table → error class → retry decision,
// observed through a server that always answers that code.
func TestReturnCodes(t *testing.T) {
	t.Parallel()
	const max = 3 // noWait.MaxAttempts
	tests := []struct {
		code     int
		class    error
		retry    bool
		attempts int
	}{
		{0, nil, false, 1},
		{1, ErrTemporary, true, max},
		{660000001, ErrTemporary, true, max},
		{660000003, ErrTemporary, true, max},
		{100000015, ErrTemporary, true, max},
		{7, ErrRateLimited, true, max},
		{660300005, ErrRateLimited, true, max},
		{660300006, ErrRateLimited, true, max},
		{100000004, ErrSignatureExpired, false, 2}, // re-signed once
		{100000005, ErrSignatureInvalid, false, 1}, // static credentials: nothing to refresh
		{3, ErrConfiguration, false, 1},
		{100000000, ErrConfiguration, false, 1},
		{100000001, ErrConfiguration, false, 1},
		{100000010, ErrConfiguration, false, 1},
		{100000011, ErrConfiguration, false, 1},
		{100000016, ErrConfiguration, false, 1},
		{100000017, ErrConfiguration, false, 1},
		{100000002, ErrCommonParameter, false, 1},
		{100000003, ErrCommonParameter, false, 1},
		{100000006, ErrCommonParameter, false, 1},
		{100000007, ErrCommonParameter, false, 1},
		{100000008, ErrCommonParameter, false, 1},
		{100000009, ErrCommonParameter, false, 1},
		{100000013, ErrCommonParameter, false, 1},
		{100000014, ErrCommonParameter, false, 1},
		{2, ErrInvalidParameter, false, 1},
		{660000002, ErrInvalidParameter, false, 1},
		{660800002, ErrConversationNotFound, false, 1},
		{660500002, ErrUserNotFound, false, 1},
		{660700012, ErrUserNotFound, false, 1},
		{660700015, ErrUserNotFound, false, 1},
		{660200001, ErrUserNotFound, false, 1},
		{51102, ErrUserNotFound, false, 1},
		{42, ErrUnknownCode, false, 1},
		{-1, ErrUnknownCode, false, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			fake := newFake(code(tt.code))
			c := newTestClient(t, serve(t, fake))
			resp, err := c.DeleteConversation(t.Context(), testReq)

			for _, class := range allClasses {
				if got := errors.Is(err, class); got != (class == tt.class) {
					t.Errorf("errors.Is(err, %v) = %v", class, got)
				}
			}
			if got := Retryable(err); got != tt.retry {
				t.Errorf("Retryable = %v, want %v", got, tt.retry)
			}
			if resp == nil || resp.Attempts != tt.attempts || len(fake.requests()) != tt.attempts {
				t.Fatalf("resp = %+v, %d requests; want %d attempts", resp, len(fake.requests()), tt.attempts)
			}
			if resp.Code != tt.code || resp.RequestID != fmt.Sprintf("req-%d", tt.code) || resp.HTTPStatus != 200 {
				t.Errorf("resp = %+v", resp)
			}
			if tt.class == nil {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			want := APIError{Action: "DeleteConv", Code: tt.code, Message: fmt.Sprintf("message %d", tt.code), RequestID: fmt.Sprintf("req-%d", tt.code), HTTPStatus: 200}
			if *ae != want {
				t.Errorf("APIError = %+v, want %+v", *ae, want)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"rate limited", &APIError{Code: 7}, true},
		{"temporary", &APIError{Code: 1}, true},
		{"wrapped temporary", fmt.Errorf("outer: %w", &APIError{Code: 660000003}), true},
		{"transport", transportError("DeleteConv", errors.New("reset")), true},
		{"bad answer 500", &ResponseError{HTTPStatus: 500}, true},
		{"bad answer 504", &ResponseError{HTTPStatus: 504}, true},
		{"bad answer 429", &ResponseError{HTTPStatus: 429}, true},
		{"bad answer 200", &ResponseError{HTTPStatus: 200}, false},
		{"bad answer 404", &ResponseError{HTTPStatus: 404}, false},
		{"signature expired", &APIError{Code: 100000004}, false},
		{"signature invalid", &APIError{Code: 100000005}, false},
		{"not found", &APIError{Code: 660800002}, false},
		{"invalid parameter", &APIError{Code: 660000002}, false},
		{"validation", &ValidationError{Field: "ConvId", Rule: ruleEmpty}, false},
		{"throttled", fmt.Errorf("x: %w", ErrThrottled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"canceled", context.Canceled, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestRetriesResign: every retry sends the same body with a new nonce and signature.
func TestRetriesResign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   []answer
		attempts int
		wantErr  error
	}{
		{"temporary twice, then success", []answer{code(1), code(660000001), code(0)}, 3, nil},
		{"rate limited, then success", []answer{code(660300005), code(0)}, 2, nil},
		{"5xx page, then success", []answer{{status: 502, body: "<html>"}, code(0)}, 2, nil},
		{"dropped, then success", []answer{{hijack: true}, code(0)}, 2, nil},
		{"signature expired once", []answer{code(100000004), code(0)}, 2, nil},
		{"signature expired twice", []answer{code(100000004), code(100000004), code(0)}, 2, ErrSignatureExpired},
		{"temporary until attempts run out", []answer{code(100000015)}, 3, ErrTemporary},
		{"temporary, then final", []answer{code(1), code(660800002)}, 2, ErrConversationNotFound},
	}
	hexRE := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(tt.script...)
			c := newTestClient(t, serve(t, fake), WithClock(func() time.Time { return fixedNow }))
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			reqs := fake.requests()
			if resp == nil || resp.Attempts != tt.attempts || len(reqs) != tt.attempts {
				t.Fatalf("resp = %+v, %d requests; want %d attempts", resp, len(reqs), tt.attempts)
			}
			nonces, sigs := map[string]bool{}, map[string]bool{}
			for i, r := range reqs {
				if r.body != reqs[0].body {
					t.Errorf("attempt %d body %s differs from %s", i+1, r.body, reqs[0].body)
				}
				n, s := r.query.Get("SignatureNonce"), r.query.Get("Signature")
				if !hexRE.MatchString(n) || nonces[n] || sigs[s] {
					t.Errorf("attempt %d reuses or malforms nonce %q / signature", i+1, n)
				}
				nonces[n], sigs[s] = true, true
				if s != Sign(testAppID, n, testSecret, fixedNow.Unix()) {
					t.Errorf("attempt %d signature does not verify", i+1)
				}
			}
		})
	}
}

// rotatingSource is a CredentialsSource whose Refresh returns the next entry of fresh.
type rotatingSource struct {
	mu         sync.Mutex
	current    Credentials
	fresh      []Credentials
	credErr    error
	refreshErr error
	gets       int
	stale      []Credentials
}

func (s *rotatingSource) Credentials(context.Context) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	return s.current, s.credErr
}

func (s *rotatingSource) Refresh(_ context.Context, stale Credentials) (Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale = append(s.stale, stale)
	if s.refreshErr != nil {
		return Credentials{}, s.refreshErr
	}
	if len(s.fresh) > 0 {
		s.current, s.fresh = s.fresh[0], s.fresh[1:]
	}
	return s.current, nil
}

// TestSignatureInvalidRefreshes: after 100000005 the source is refreshed once; a
// second 100000005 is final.
func TestSignatureInvalidRefreshes(t *testing.T) {
	t.Parallel()
	const rotated = "ffeeddccbbaa99887766554433221100" // the secret ZEGO now holds
	old := Credentials{AppID: testAppID, ServerSecret: testSecret}
	good := Credentials{AppID: testAppID, ServerSecret: rotated}
	wrong := Credentials{AppID: testAppID, ServerSecret: "0123456789abcdef0123456789abcdef"}
	errVault := errors.New("vault unavailable")
	tests := []struct {
		name      string
		src       *rotatingSource
		max       int // RetryPolicy.MaxAttempts; noWait's when 0
		attempts  int // requests ZEGO saw
		refreshes int
		wantErr   error // nil for success
		notErr    error
	}{
		{"rotation picked up", &rotatingSource{current: old, fresh: []Credentials{good}}, 0, 2, 1, nil, nil},
		{"still wrong after refresh", &rotatingSource{current: old, fresh: []Credentials{wrong, good}}, 0, 2, 1, ErrSignatureInvalid, nil},
		{"refresh has nothing newer", &rotatingSource{current: old}, 0, 1, 1, ErrSignatureInvalid, nil},
		{"refresh fails", &rotatingSource{current: old, refreshErr: errVault}, 0, 1, 1, errVault, nil},
		{"refresh returns malformed", &rotatingSource{current: old, fresh: []Credentials{{AppID: testAppID, ServerSecret: "nope"}}}, 0, 1, 1, ErrConfiguration, ErrInvalidParameter},
		{"no attempt left to refresh for", &rotatingSource{current: old, fresh: []Credentials{good}}, 1, 1, 0, ErrSignatureInvalid, nil},
		{"credentials fail", &rotatingSource{current: old, credErr: errVault}, 0, 0, 0, errVault, nil},
		{"credentials malformed", &rotatingSource{current: Credentials{}}, 0, 0, 0, ErrConfiguration, ErrInvalidParameter},
		{"current already valid", &rotatingSource{current: good}, 0, 1, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake()
			fake.respond = func(r *http.Request, _ string) answer {
				q := r.URL.Query()
				stamp, _ := strconv.ParseInt(q.Get("Timestamp"), 10, 64)
				if q.Get("Signature") != Sign(testAppID, q.Get("SignatureNonce"), rotated, stamp) {
					return code(100000005)
				}
				return code(0)
			}
			policy := noWait
			if tt.max != 0 {
				policy.MaxAttempts = tt.max
			}
			c, err := New(tt.src, WithBaseURL(serve(t, fake)), WithRetry(policy), WithRateLimit(math.Inf(1)))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.notErr != nil && errors.Is(err, tt.notErr) {
				t.Errorf("err = %v also matches %v", err, tt.notErr)
			}
			if n := len(fake.requests()); n != tt.attempts || (n == 0) != (resp == nil) || resp != nil && resp.Attempts != n {
				t.Errorf("resp = %+v, ZEGO saw %d requests; want %d", resp, n, tt.attempts)
			}
			if len(tt.src.stale) != tt.refreshes {
				t.Fatalf("Refresh called %d times, want %d", len(tt.src.stale), tt.refreshes)
			}
			if tt.refreshes > 0 && tt.src.stale[0] != old {
				t.Error("Refresh was not given the credentials ZEGO refused")
			}
			if tt.refreshes > 0 && tt.attempts == 2 && tt.src.gets != 1 {
				t.Errorf("Credentials called %d times; the retry must use what Refresh returned", tt.src.gets)
			}
			if err != nil && (regexp.MustCompile(rotated + "|" + testSecret).MatchString(err.Error())) {
				t.Errorf("error %q contains a secret", err)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	p := DefaultRetryPolicy
	tests := []struct {
		retry       int
		rateLimited bool
		lo, hi      time.Duration
	}{
		{1, false, 100 * time.Millisecond, 200 * time.Millisecond},
		{2, false, 200 * time.Millisecond, 400 * time.Millisecond},
		{3, false, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, false, time.Second, 2 * time.Second},
		{60, false, time.Second, 2 * time.Second}, // no overflow
		{1, true, time.Second, 2 * time.Second},
		{3, true, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.retry, tt.rateLimited), func(t *testing.T) {
			t.Parallel()
			var sawLow, sawHigh bool
			for range 2000 {
				d := p.backoff(tt.retry, tt.rateLimited)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("backoff = %v, want within [%v, %v]", d, tt.lo, tt.hi)
				}
				mid := (tt.lo + tt.hi) / 2
				sawLow, sawHigh = sawLow || d < mid, sawHigh || d > mid
			}
			if !sawLow || !sawHigh {
				t.Errorf("no jitter: all backoffs on one side of the range")
			}
		})
	}

	t.Run("rate-limited floor above the ceiling", func(t *testing.T) {
		t.Parallel()
		p := RetryPolicy{MaxAttempts: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, RateLimitedMinBackoff: time.Second}
		if d := p.backoff(2, true); d != time.Second {
			t.Errorf("backoff = %v, want the floor 1s", d)
		}
	})
}

// TestRateLimitedBacksOffLonger measures, in a synctest bubble, the gap between
// the failed attempt and its retry under DefaultRetryPolicy.
func TestRateLimitedBacksOffLonger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		first  answer
		lo, hi time.Duration
	}{
		{"temporary", code(1), 100 * time.Millisecond, 200 * time.Millisecond},
		{"rate limited", code(660300006), time.Second, 2 * time.Second},
		{"HTTP 429", answer{status: 429, body: "too many"}, time.Second, 2 * time.Second},
		{"HTTP 503", answer{status: 503, body: "unavailable"}, 100 * time.Millisecond, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake := newFake(tt.first, code(0))
				c := memClient(t, fake)
				if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
					t.Fatal(err)
				}
				reqs := fake.requests()
				if len(reqs) != 2 {
					t.Fatalf("%d requests, want 2", len(reqs))
				}
				if gap := reqs[1].at.Sub(reqs[0].at); gap < tt.lo || gap > tt.hi {
					t.Errorf("retried after %v, want within [%v, %v]", gap, tt.lo, tt.hi)
				}
			})
		})
	}
}

// TestDeadlines: the client never waits past the context's deadline, and says
// why it stopped.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []Option
		script   []answer
		warmup   bool          // one successful call first, to use up the limiter's token
		timeout  time.Duration // the context's deadline, from the call's start
		want     error
		notWant  []error
		attempts int           // 0: no request, nil *Response
		elapsed  time.Duration // fake time the call took; -1 for "some, within the deadline"
	}{
		{
			name: "rate-limited backoff would pass the deadline", script: []answer{code(660300005)},
			timeout: 500 * time.Millisecond, want: ErrRateLimited, notWant: []error{context.DeadlineExceeded},
			attempts: 1, elapsed: 0,
		},
		{
			name: "second backoff would pass the deadline", script: []answer{code(1)},
			timeout: 250 * time.Millisecond, want: ErrTemporary, notWant: []error{context.DeadlineExceeded},
			attempts: 2, elapsed: -1,
		},
		{
			name: "limiter wait would pass the deadline", opts: []Option{WithRateLimit(1)}, warmup: true,
			timeout: 500 * time.Millisecond, want: ErrThrottled, notWant: []error{context.DeadlineExceeded},
			attempts: 0, elapsed: 0,
		},
		{
			name: "limiter wait within the deadline", opts: []Option{WithRateLimit(1)}, warmup: true,
			timeout: 2 * time.Second, want: nil,
			attempts: 1, elapsed: spacing(1),
		},
		{
			name: "deadline during the request", script: []answer{{block: true}},
			timeout: 2 * time.Second, want: context.DeadlineExceeded, notWant: []error{ErrTransport, ErrThrottled},
			attempts: 1, elapsed: 2 * time.Second,
		},
		{
			name: "retry's limiter wait would pass the deadline", opts: []Option{WithRateLimit(1), WithRetry(RetryPolicy{MaxAttempts: 3})},
			script: []answer{code(1)}, timeout: 500 * time.Millisecond, want: ErrTemporary, notWant: []error{ErrThrottled, context.DeadlineExceeded},
			attempts: 1, elapsed: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake := newFake(tt.script...)
				c := memClient(t, fake, tt.opts...)
				if tt.warmup {
					fake.respond = func(*http.Request, string) answer { return code(0) }
					if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
						t.Fatal(err)
					}
				}
				warm := len(fake.requests())

				ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
				defer cancel()
				start := time.Now()
				resp, err := c.DeleteConversation(ctx, testReq)
				elapsed := time.Since(start)

				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				for _, nw := range tt.notWant {
					if errors.Is(err, nw) {
						t.Errorf("err = %v also matches %v", err, nw)
					}
				}
				if n := len(fake.requests()) - warm; n != tt.attempts || (n == 0) != (resp == nil) || resp != nil && resp.Attempts != n {
					t.Errorf("resp = %+v, %d requests; want %d", resp, n, tt.attempts)
				}
				switch {
				case tt.elapsed >= 0 && (elapsed < tt.elapsed-time.Microsecond || elapsed > tt.elapsed+time.Microsecond):
					t.Errorf("call took %v, want %v", elapsed, tt.elapsed)
				case elapsed > tt.timeout:
					t.Errorf("call took %v, past its %v deadline", elapsed, tt.timeout)
				}
				if resp != nil && resp.Latency != elapsed {
					t.Errorf("Latency = %v, want %v", resp.Latency, elapsed)
				}
			})
		})
	}
}

// TestCancel: a cancelled context ends a wait at once, with context.Canceled.
func TestCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []Option
		warmup   bool // use up the limiter's token first
		attempts int
	}{
		{name: "during a backoff", attempts: 1},
		{name: "during a limiter wait", opts: []Option{WithRateLimit(1)}, warmup: true, attempts: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake := newFake(code(660300005))
				c := memClient(t, fake, tt.opts...)
				if tt.warmup {
					c.DeleteConversation(t.Context(), testReq)
				}
				warm := len(fake.requests())
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(300*time.Millisecond, cancel)
				start := time.Now()
				resp, err := c.DeleteConversation(ctx, testReq)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
				n := len(fake.requests()) - warm
				if time.Since(start) != 300*time.Millisecond || n != tt.attempts || (n == 0) != (resp == nil) {
					t.Errorf("returned after %v with %+v and %d requests; want at the cancel, after %d", time.Since(start), resp, n, tt.attempts)
				}
			})
		})
	}
}

// TestAttemptTimeout: the HTTP client's own timeout is a transport failure, retried,
// and does not look like the caller's deadline.
func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   []answer
		wantErr  bool
		attempts int
	}{
		{"retried after a timeout", []answer{{block: true}, code(0)}, false, 2},
		{"every attempt times out", []answer{{block: true}}, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake := newFake(tt.script...)
				hc := &http.Client{Transport: inMemory{fake}, Timeout: time.Second}
				c := memClient(t, fake, WithHTTPClient(hc), WithRetry(noWait))
				resp, err := c.DeleteConversation(t.Context(), testReq)
				if resp == nil || resp.Attempts != tt.attempts {
					t.Fatalf("resp = %+v, want %d attempts", resp, tt.attempts)
				}
				if !tt.wantErr {
					if err != nil {
						t.Errorf("err = %v", err)
					}
					return
				}
				var ue *url.Error
				if !errors.Is(err, ErrTransport) || !errors.As(err, &ue) || !ue.Timeout() {
					t.Errorf("err = %v, want ErrTransport with a timed-out *url.Error", err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v matches context.DeadlineExceeded; the caller's context is live", err)
				}
			})
		})
	}
}

// TestRateLimiterSpacing: one limiter per Client, shared by every method, spaces
// arrivals so that no one-second window holds more than the rate.
func TestRateLimiterSpacing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rps  float64
		opts []Option
	}{
		{20, nil},
		{5, []Option{WithRateLimit(5)}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rps), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake := newFake(answer{body: `{"Code":0,"TotalCount":0,"Next":0,"List":[]}`})
				c := memClient(t, fake, tt.opts...)
				calls := 3*int(tt.rps) + 1
				var wg sync.WaitGroup
				for i := range calls {
					wg.Go(func() {
						var err error
						if i%2 == 0 {
							_, err = c.DeleteConversation(t.Context(), testReq)
						} else {
							_, err = c.QueryConversationList(t.Context(), "alice", 100, 0)
						}
						if err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				reqs := fake.requests()
				if len(reqs) != calls {
					t.Fatalf("%d requests, want %d", len(reqs), calls)
				}
				perSecond := int(tt.rps)
				for i := perSecond; i < len(reqs); i++ {
					if w := reqs[i].at.Sub(reqs[i-perSecond].at); w <= time.Second {
						t.Errorf("requests %d..%d arrived within %v: more than %d in one second", i-perSecond, i, w, perSecond)
					}
				}
				minGap := spacing(tt.rps)
				for i := 1; i < len(reqs); i++ {
					if gap := reqs[i].at.Sub(reqs[i-1].at); gap < minGap-time.Microsecond {
						t.Errorf("gap %v between requests %d and %d, want at least %v", gap, i-1, i, minGap)
					}
				}
			})
		})
	}
}

// spacing is the limiter's interval between requests at rps: 97% of the rate.
func spacing(rps float64) time.Duration {
	return time.Duration(float64(time.Second) / (rps * 0.97))
}

// TestRetryBudget follows one Client's bucket through a sequence of calls: a
// backoff retry takes a token, an empty bucket returns the retryable error
// after one attempt, healthy answers refill it, a retry that is answered
// healthily (or never sent) gives its token back, and retries of throttle
// answers take none.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	policy := RetryPolicy{MaxAttempts: 4, RetryBudget: 2, RetryBudgetRatio: 0.5}
	steps := []struct {
		name     string
		script   []answer // this call's answers; the last repeats
		attempts int
		wantErr  error
		tokens   float64 // left after the call
	}{
		{"two retries spend the bucket", []answer{code(1)}, 3, ErrTemporary, 0},
		{"empty: returned after one attempt", []answer{code(660000001)}, 1, ErrTemporary, 0},
		{"a transport failure is not healthy", []answer{{hijack: true}}, 1, ErrTransport, 0},
		{"a healthy answer adds the ratio", []answer{code(0)}, 1, nil, 0.5},
		{"a final code is healthy too", []answer{code(660800002)}, 1, ErrConversationNotFound, 1},
		{"throttle answers are retried without tokens", []answer{code(7)}, 4, ErrRateLimited, 1},
		{"one token: one retry", []answer{code(1)}, 2, ErrTemporary, 0},
		{"refill again", []answer{code(0)}, 1, nil, 0.5},
		{"and again", []answer{code(0)}, 1, nil, 1},
		{"a retry answered healthily is given back", []answer{code(1), code(0)}, 2, nil, 1.5},
		{"capped at RetryBudget", []answer{code(0)}, 1, nil, 2},
		{"re-signing is not budgeted", []answer{code(100000004), code(0)}, 2, nil, 2},
	}
	fake := newFake()
	var script []answer
	var n int
	fake.respond = func(*http.Request, string) answer {
		a := script[min(n, len(script)-1)]
		n++
		return a
	}
	c := newTestClient(t, serve(t, fake), WithRetry(policy))
	for _, st := range steps {
		fake.mu.Lock()
		script, n = st.script, 0
		fake.mu.Unlock()
		resp, err := c.DeleteConversation(t.Context(), testReq)
		if st.wantErr == nil && err != nil || st.wantErr != nil && !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if resp == nil || resp.Attempts != st.attempts {
			t.Fatalf("%s: resp = %+v, want %d attempts", st.name, resp, st.attempts)
		}
		if got := c.budget.tokens; math.Abs(got-st.tokens) > 1e-9 {
			t.Fatalf("%s: %v tokens left, want %v", st.name, got, st.tokens)
		}
	}
}

// TestRetryBudgetUnsentRetry: a token taken for a retry that is never sent (the
// caller cancelled during the backoff) goes back into the bucket.
func TestRetryBudgetUnsentRetry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake := newFake(code(1))
		c := memClient(t, fake, WithRetry(RetryPolicy{MaxAttempts: 2, MinBackoff: time.Second, MaxBackoff: time.Second, RetryBudget: 1, RetryBudgetRatio: 0.1}))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(500*time.Millisecond, cancel)
		if _, err := c.DeleteConversation(ctx, testReq); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := len(fake.requests()); n != 1 || c.budget.tokens != 1 {
			t.Errorf("%d requests and %v tokens left, want 1 request and the token back", n, c.budget.tokens)
		}
	})
}
