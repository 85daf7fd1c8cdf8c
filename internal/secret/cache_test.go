package secret_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"

	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

const testSecretID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:zego/deleteconv-AbCdEf"

func TestCredentialsCachedForTTL(t *testing.T) {
	t.Parallel()
	const ttl = 5 * time.Minute
	tests := []struct {
		name        string
		after       time.Duration // clock advance between the first and second call
		rotate      bool          // the secret changes in between
		wantFetches int
		want        zim.Credentials // what the second call returns
		wantThen    zim.Credentials // what a call returns once the refresh, if any, has ended
	}{
		{name: "just fetched", after: 0, rotate: true, wantFetches: 1, want: credsA, wantThen: credsA},
		{name: "just before expiry", after: ttl - time.Nanosecond, rotate: true, wantFetches: 1, want: credsA, wantThen: credsA},
		// Past the TTL the cached value is served while one fetch refreshes it.
		{name: "at expiry", after: ttl, rotate: true, wantFetches: 2, want: credsA, wantThen: credsB},
		{name: "long after expiry, unchanged", after: 3 * ttl, wantFetches: 2, want: credsA, wantThen: credsA},
		// Past the grace, the call waits for the fetch.
		{name: "past the grace period", after: ttl + secret.DefaultStaleGrace, rotate: true, wantFetches: 2, want: credsB, wantThen: credsB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				fake, clk := newFake(secretJSON(credsA)), newClock()
				c := secret.NewCache(fake, testSecretID, ttl, secret.WithClock(clk.Now))

				if n := c.Fetches(); n != 0 {
					t.Fatalf("Fetches before first use = %d, want 0 (lazy)", n)
				}
				got, err := c.Credentials(t.Context())
				if err != nil || got != credsA {
					t.Fatalf("first Credentials = %v, %v; want credsA", got.AppID, err)
				}
				if tt.rotate {
					fake.set(secretJSON(credsB), nil)
				}
				clk.Add(tt.after)
				got, err = c.Credentials(t.Context())
				if err != nil {
					t.Fatalf("second Credentials: %v", err)
				}
				if got != tt.want {
					t.Errorf("second Credentials returned secret %q..., want %q...", got.ServerSecret[:4], tt.want.ServerSecret[:4])
				}
				synctest.Wait() // a background refresh ends
				if got, err = c.Credentials(t.Context()); err != nil || got != tt.wantThen {
					t.Errorf("then Credentials returned secret %.4q..., %v; want %q...", got.ServerSecret, err, tt.wantThen.ServerSecret[:4])
				}
				if n := c.Fetches(); n != tt.wantFetches || fake.Calls() != tt.wantFetches {
					t.Errorf("Fetches = %d (API calls %d), want %d", n, fake.Calls(), tt.wantFetches)
				}
				if n := c.StaleServed(); n != 0 {
					t.Errorf("StaleServed = %d, want 0: no fetch failed", n)
				}
			})
		})
	}
}

// Past the TTL, many callers get the cached credentials at once, not waiting
// for Secrets Manager, and start one fetch between them.
func TestStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const ttl, callers = time.Minute, 20
		fake := newFake(secretJSON(credsA))
		c := secret.NewCache(fake, testSecretID, ttl)
		if _, err := c.Credentials(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * ttl)
		release := make(chan struct{})
		fake.setBlock(release)
		fake.set(secretJSON(credsB), nil)
		start := time.Now()
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				if got, err := c.Credentials(t.Context()); err != nil || got != credsA {
					t.Errorf("Credentials = %.4q..., %v; want the cached credsA", got.ServerSecret, err)
				}
			})
		}
		wg.Wait()       // with the fetch still held
		synctest.Wait() // the refresh has reached Secrets Manager
		if waited := time.Since(start); waited != 0 {
			t.Errorf("callers waited %v, want an answer at once", waited)
		}
		if n := fake.Calls(); n != 2 {
			t.Errorf("%d GetSecretValue calls, want 2 (init, then one refresh)", n)
		}
		close(release)
		synctest.Wait()
		if got, err := c.Credentials(t.Context()); err != nil || got != credsB {
			t.Errorf("after the refresh: Credentials = %.4q..., %v; want credsB", got.ServerSecret, err)
		}
		if n := c.StaleServed(); n != 0 {
			t.Errorf("StaleServed = %d, want 0: no fetch failed", n)
		}
	})
}

func TestNonPositiveTTLUsesDefault(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{0, -time.Second} {
		fake, clk := newFake(secretJSON(credsA)), newClock()
		c := secret.NewCache(fake, testSecretID, ttl, secret.WithClock(clk.Now))
		for _, step := range []time.Duration{0, secret.DefaultTTL - time.Second} {
			clk.Add(step)
			if _, err := c.Credentials(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if n := c.Fetches(); n != 1 {
			t.Errorf("ttl %v: Fetches = %d within DefaultTTL, want 1", ttl, n)
		}
	}
}

// Many callers needing credentials at once, first use and after expiry alike,
// cause one GetSecretValue each time.
func TestCredentialsNoStampede(t *testing.T) {
	t.Parallel()
	for _, callers := range []int{10, 50} {
		synctest.Test(t, func(t *testing.T) {
			fake, clk := newFake(secretJSON(credsA)), newClock()
			c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithClock(clk.Now))

			for round := 1; round <= 2; round++ {
				release := make(chan struct{})
				fake.setBlock(release)
				var wg sync.WaitGroup
				errs := make(chan error, callers)
				for range callers {
					wg.Go(func() {
						got, err := c.Credentials(t.Context())
						if err == nil && got != credsA {
							err = errors.New("wrong credentials")
						}
						errs <- err
					})
				}
				synctest.Wait() // the one fetch has started (round 1: every caller waits for it; round 2: they were served the cached value)
				close(release)
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Errorf("round %d: %v", round, err)
					}
				}
				if n := c.Fetches(); n != round || fake.Calls() != round {
					t.Errorf("%d callers, round %d: Fetches = %d (API calls %d), want %d", callers, round, n, fake.Calls(), round)
				}
				clk.Add(time.Minute) // expire
			}
		})
	}
}

func TestFailedFetchIsNotCached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		value     string
		err       error
		wantClass error
	}{
		{name: "transient", value: secretJSON(credsA), err: errors.New("connection reset"), wantClass: secret.ErrUnavailable},
		{name: "malformed", value: `{"AppId": 1}`, wantClass: secret.ErrConfiguration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(tt.value)
			fake.set(tt.value, tt.err)
			c := secret.NewCache(fake, testSecretID, time.Minute)

			if _, err := c.Credentials(t.Context()); !errors.Is(err, tt.wantClass) {
				t.Fatalf("first Credentials error = %v, want %v", err, tt.wantClass)
			}
			fake.set(secretJSON(credsA), nil)
			got, err := c.Credentials(t.Context())
			if err != nil || got != credsA {
				t.Fatalf("after the fix: Credentials = %v, %v; want credsA", got.AppID, err)
			}
			if n := c.Fetches(); n != 2 {
				t.Errorf("Fetches = %d, want 2 (the failure was not cached)", n)
			}
		})
	}
}

// A caller never waits past its context; the fetch it started still serves
// the next caller. Its error is ErrUnavailable and not the context's own
// error: nothing was sent to ZEGO, so it is not a ZEGO timeout.
func TestCallerContextBoundsTheWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake := newFake(secretJSON(credsA))
		release := make(chan struct{})
		fake.setBlock(release)
		c := secret.NewCache(fake, testSecretID, time.Minute)

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Credentials(ctx)
		if !errors.Is(err, secret.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want ErrUnavailable and not context.DeadlineExceeded", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "the caller's context ended: context deadline exceeded") {
			t.Errorf("error %q does not say the caller's deadline passed", msg)
		}
		if waited := time.Since(start); waited != 2*time.Second {
			t.Errorf("caller waited %v, want its 2s deadline", waited)
		}

		close(release)
		synctest.Wait() // the detached fetch completes
		got, err := c.Credentials(t.Context())
		if err != nil || got != credsA {
			t.Fatalf("next caller: %v, %v; want credsA", got.AppID, err)
		}
		if n := c.Fetches(); n != 1 {
			t.Errorf("Fetches = %d, want 1 (the first fetch was reused)", n)
		}

		done, stop := context.WithCancel(t.Context())
		stop()
		c2 := secret.NewCache(newFake(secretJSON(credsA)), testSecretID, time.Minute)
		if _, err := c2.Credentials(done); !errors.Is(err, secret.ErrUnavailable) || errors.Is(err, context.Canceled) {
			t.Errorf("canceled context: error = %v, want ErrUnavailable and not context.Canceled", err)
		}
		if n := c2.Fetches(); n != 0 {
			t.Errorf("canceled context: Fetches = %d, want 0", n)
		}
	})
}

// A Secrets Manager that does not answer within the fetch timeout is
// ErrUnavailable, and the error does not match context.DeadlineExceeded,
// which callers read as a ZEGO timeout.
func TestFetchTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake := newFake(secretJSON(credsA))
		fake.setBlock(make(chan struct{})) // never answers
		c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithFetchTimeout(3*time.Second))

		start := time.Now()
		_, err := c.Credentials(t.Context())
		if !errors.Is(err, secret.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want ErrUnavailable and not a context error", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "Secrets Manager did not answer within 3s") {
			t.Errorf("error %q does not say Secrets Manager did not answer within the timeout", msg)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Errorf("waited %v, want the 3s fetch timeout", waited)
		}
	})
}

// Lambda freezes the process between invocations. A fetch started in one
// invocation and frozen with it may still look in flight after the thaw, its
// timer not yet run. The next invocation joins it only while the fetch is
// within its own timeout by the wall clock; after that it starts a fresh fetch,
// and the old fetch's late answer does not overwrite the fresh one.
func TestOverdueFetchIsNotJoined(t *testing.T) {
	t.Parallel()
	const fetchTimeout = 10 * time.Second
	tests := []struct {
		name        string
		frozen      time.Duration // wall time that passes while the process is frozen
		wantFetches int
		want        zim.Credentials
	}{
		{name: "thawed within the fetch's timeout: joined", frozen: fetchTimeout - time.Second - time.Nanosecond, wantFetches: 1, want: credsB},
		{name: "thawed as the fetch's timeout passes: fresh fetch", frozen: fetchTimeout - time.Second, wantFetches: 2, want: credsB},
		{name: "thawed long after: fresh fetch", frozen: time.Hour, wantFetches: 2, want: credsB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				// The injected clock is the wall clock; the bubble's clock drives
				// the fetch's timer, which a frozen process has not run yet.
				fake, clk := newFake(secretJSON(credsA)), newClock()
				stuck := make(chan struct{})
				fake.setBlock(stuck)
				c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithClock(clk.Now), secret.WithFetchTimeout(fetchTimeout))

				// Invocation 1 starts the fetch and gives up at its deadline.
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				if _, err := c.Credentials(ctx); !errors.Is(err, secret.ErrUnavailable) {
					t.Fatalf("invocation 1: error = %v, want ErrUnavailable", err)
				}
				clk.Add(time.Second)

				// Frozen; meanwhile the secret is rotated and Secrets Manager answers again.
				clk.Add(tt.frozen)
				fake.setBlock(nil)
				fake.set(secretJSON(credsB), nil)

				type answer struct {
					creds zim.Credentials
					err   error
				}
				got := make(chan answer, 1)
				go func() {
					creds, err := c.Credentials(t.Context())
					got <- answer{creds, err}
				}()
				synctest.Wait()
				if n := c.Fetches(); n != tt.wantFetches {
					t.Errorf("Fetches after the thaw = %d, want %d", n, tt.wantFetches)
				}
				if tt.wantFetches == 2 {
					// Invocation 2 has its answer from the fresh fetch already.
					a := <-got
					if a.err != nil || a.creds != tt.want {
						t.Fatalf("invocation 2: AppId %d, %v; want credsB", a.creds.AppID, a.err)
					}
					fake.set(secretJSON(credsA), nil) // the old fetch's late answer is older
				}
				close(stuck)
				if tt.wantFetches == 1 {
					a := <-got
					if a.err != nil || a.creds != tt.want {
						t.Fatalf("invocation 2: AppId %d, %v; want credsB", a.creds.AppID, a.err)
					}
				}
				synctest.Wait() // the old fetch has answered
				if creds, err := c.Credentials(t.Context()); err != nil || creds != tt.want {
					t.Errorf("after the old fetch ended: secret %.4q..., %v; want credsB", creds.ServerSecret, err)
				}
				if n := c.Fetches(); n != tt.wantFetches {
					t.Errorf("Fetches at the end = %d, want %d", n, tt.wantFetches)
				}
			})
		})
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	const minRefresh = 2 * time.Second
	tests := []struct {
		name        string
		prime       bool          // fetch credsA first
		refreshed   bool          // then refresh once (the secret unchanged)
		after       time.Duration // clock advance before Refresh
		stale       zim.Credentials
		next        string // the secret's value when Refresh is called
		nextErr     error
		want        zim.Credentials
		wantErr     error
		wantFetches int
	}{
		{name: "another caller already refreshed", prime: true, after: time.Minute, stale: credsB, next: secretJSON(credsB), want: credsA, wantFetches: 1},
		{name: "stale is current: fetch anew", prime: true, after: minRefresh, stale: credsA, next: secretJSON(credsB), want: credsB, wantFetches: 2},
		{name: "rotated moments after the first fetch: fetch at once", prime: true, stale: credsA, next: secretJSON(credsB), want: credsB, wantFetches: 2},
		{name: "within the minimum interval of a refresh: current value", prime: true, refreshed: true, after: minRefresh - time.Millisecond, stale: credsA, next: secretJSON(credsB), want: credsA, wantFetches: 2},
		{name: "after the minimum interval of a refresh: fetch", prime: true, refreshed: true, after: minRefresh, stale: credsA, next: secretJSON(credsB), want: credsB, wantFetches: 3},
		{name: "nothing cached yet", stale: credsA, next: secretJSON(credsB), want: credsB, wantFetches: 1},
		{name: "fetch fails", prime: true, after: minRefresh, stale: credsA, nextErr: errors.New("dial tcp: connection refused"), wantErr: secret.ErrUnavailable, wantFetches: 2},
		{name: "secret became malformed", prime: true, after: minRefresh, stale: credsA, next: `{"AppId": 1, "ServerSecret": "nothex"}`, wantErr: secret.ErrConfiguration, wantFetches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, clk := newFake(secretJSON(credsA)), newClock()
			c := secret.NewCache(fake, testSecretID, time.Hour, secret.WithClock(clk.Now), secret.WithMinRefreshInterval(minRefresh))
			if tt.prime {
				if _, err := c.Credentials(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if tt.refreshed {
				if _, err := c.Refresh(t.Context(), credsA); err != nil {
					t.Fatal(err)
				}
			}
			clk.Add(tt.after)
			fake.set(tt.next, tt.nextErr)

			got, err := c.Refresh(t.Context(), tt.stale)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Refresh error = %v, want %v", err, tt.wantErr)
				}
				assertNoSecret(t, "error", err.Error())
			} else if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got != tt.want {
				t.Errorf("Refresh returned AppId %d secret %.4q..., want AppId %d secret %.4q...", got.AppID, got.ServerSecret, tt.want.AppID, tt.want.ServerSecret)
			}
			if n := c.Fetches(); n != tt.wantFetches {
				t.Errorf("Fetches = %d, want %d", n, tt.wantFetches)
			}
		})
	}
}

// Concurrent refreshes for the same stale credentials share one fetch, and the
// refreshed credentials are then served by Credentials.
func TestRefreshDeduplicated(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake := newFake(secretJSON(credsA))
		c := secret.NewCache(fake, testSecretID, time.Hour)
		if _, err := c.Credentials(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(secret.DefaultMinRefreshInterval) // fake time: leave the minimum interval
		fake.set(secretJSON(credsB), nil)
		release := make(chan struct{})
		fake.setBlock(release)

		const callers = 10
		results := make(chan zim.Credentials, callers)
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				got, err := c.Refresh(t.Context(), credsA)
				if err != nil {
					t.Error(err)
				}
				results <- got
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		close(results)
		for got := range results {
			if got != credsB {
				t.Errorf("Refresh returned AppId %d secret %.4q..., want credsB", got.AppID, got.ServerSecret)
			}
		}
		if n := c.Fetches(); n != 2 {
			t.Errorf("Fetches = %d, want 2 (one initial, one shared refresh)", n)
		}
		// A caller still holding credsA after the refresh gets credsB without a fetch.
		if got, err := c.Refresh(t.Context(), credsA); err != nil || got != credsB {
			t.Errorf("late Refresh = %v, want credsB", err)
		}
		if got, err := c.Credentials(t.Context()); err != nil || got != credsB {
			t.Errorf("Credentials after refresh = %v, want credsB", err)
		}
		if n := c.Fetches(); n != 2 {
			t.Errorf("Fetches = %d after late callers, want 2", n)
		}
	})
}

// A wrong secret cannot make every message of a batch call Secrets Manager:
// repeated refreshes within the minimum interval fetch once.
func TestRefreshRateLimited(t *testing.T) {
	t.Parallel()
	fake, clk := newFake(secretJSON(credsA)), newClock()
	c := secret.NewCache(fake, testSecretID, time.Hour, secret.WithClock(clk.Now), secret.WithMinRefreshInterval(time.Second))
	if _, err := c.Credentials(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		clk.Add(100 * time.Millisecond) // 100 refreshes over 10 s
		if _, err := c.Refresh(t.Context(), credsA); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	// One initial fetch and one refresh per elapsed second.
	if n := c.Fetches(); n != 11 {
		t.Errorf("Fetches = %d over 10 s of refreshes with a 1 s minimum interval, want 11", n)
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		value     string
		binary    []byte
		err       error
		wantClass error
		wantField string
		wantText  []string
	}{
		{name: "empty SecretString", value: "", wantClass: secret.ErrConfiguration, wantField: "SecretString", wantText: []string{"SecretString"}},
		{name: "SecretBinary only", binary: []byte(secretJSON(credsA)), wantClass: secret.ErrConfiguration, wantField: "SecretString", wantText: []string{"SecretBinary"}},
		{name: "bad ServerSecret", value: `{"AppId": 1, "ServerSecret": "` + secretA[:31] + `"}`, wantClass: secret.ErrConfiguration, wantField: "ServerSecret", wantText: []string{"ServerSecret", "32 hexadecimal"}},
		{name: "bad AppId", value: `{"AppId": "x` + secretA + `", "ServerSecret": "` + secretA + `"}`, wantClass: secret.ErrConfiguration, wantField: "AppId", wantText: []string{"AppId"}},
		{name: "network", err: errors.New("dial tcp 10.0.0.1:443: i/o timeout"), wantClass: secret.ErrUnavailable, wantText: []string{"network"}},
		{name: "dialer timeout", err: fmt.Errorf("dial tcp 10.0.0.1:443: %w", context.DeadlineExceeded), wantClass: secret.ErrUnavailable, wantText: []string{"timed out reaching Secrets Manager", "dial tcp"}},
		{name: "SDK saw a canceled context", err: fmt.Errorf("operation error Secrets Manager: GetSecretValue, %w", context.Canceled), wantClass: secret.ErrUnavailable, wantText: []string{"timed out reaching Secrets Manager"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(tt.value)
			fake.binary = tt.binary
			fake.err = tt.err
			c := secret.NewCache(fake, testSecretID, time.Minute)
			_, err := c.Credentials(t.Context())
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("error = %v, want %v", err, tt.wantClass)
			}
			var se *secret.Error
			if !errors.As(err, &se) || se.SecretID != testSecretID {
				t.Errorf("error = %#v, want a *secret.Error naming the secret", err)
			}
			var fe *secret.FieldError
			if tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField) {
				t.Errorf("error = %v, want a *FieldError for %s", err, tt.wantField)
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Errorf("error matches a context error (read as a ZEGO timeout): %v", err)
			}
			var ve *zim.ValidationError
			if errors.As(err, &ve) {
				t.Errorf("error matches *zim.ValidationError (an invalid request to the function): %v", err)
			}
			msg := err.Error()
			for _, want := range append(tt.wantText, testSecretID) {
				if !bytes.Contains([]byte(msg), []byte(want)) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			assertNoSecret(t, "error", msg)
			if bytes.Contains([]byte(msg), []byte(secretA[:31])) {
				t.Errorf("error %q contains part of a secret", msg)
			}
		})
	}
}

// Init's bounded call starts the shared fetch and stops waiting when its
// bound passes; the first invocation's call waits for that fetch instead of
// starting a second one.
func TestInitFetchIsJoinedByTheFirstCall(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake := newFake(secretJSON(credsA))
		release := make(chan struct{})
		fake.setBlock(release)
		c := secret.NewCache(fake, testSecretID, time.Minute)

		initCtx, endInit := context.WithCancel(t.Context())
		initDone := make(chan error, 1)
		go func() { _, err := c.Credentials(initCtx); initDone <- err }()
		synctest.Wait()
		endInit() // init's bound passes with the fetch in flight
		if err := <-initDone; !errors.Is(err, secret.ErrUnavailable) {
			t.Fatalf("init's call = %v, want ErrUnavailable once its context ended", err)
		}
		if n := fake.Calls(); n != 1 {
			t.Fatalf("GetSecretValue calls after init = %d, want 1 (still in flight)", n)
		}

		got := make(chan error, 1)
		go func() {
			creds, err := c.Credentials(t.Context())
			if err == nil && creds != credsA {
				err = errors.New("wrong credentials")
			}
			got <- err
		}()
		synctest.Wait() // the first call is waiting for init's fetch
		close(release)
		if err := <-got; err != nil {
			t.Fatalf("first Credentials: %v", err)
		}
		if n := c.Fetches(); n != 1 || fake.Calls() != 1 {
			t.Errorf("Fetches = %d (API calls %d), want 1: the first call joined init's fetch", n, fake.Calls())
		}
	})
}

// An init fetch that fails or times out is not cached: it is logged, and the
// first call fetches as it would have without it.
func TestInitFetchFailureIsNotCached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		hang bool
	}{
		{name: "Secrets Manager unreachable", err: errors.New("dial tcp: connection refused")},
		{name: "Secrets Manager does not answer", hang: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var logs testutil.Buffer
				fake := newFake(secretJSON(credsA))
				fake.set(secretJSON(credsA), tt.err)
				if tt.hang {
					fake.setBlock(make(chan struct{}))
				}
				c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
				_, _ = c.Credentials(t.Context())
				time.Sleep(secret.DefaultFetchTimeout)
				synctest.Wait() // init's fetch has failed

				fake.set(secretJSON(credsA), nil)
				fake.setBlock(nil)
				creds, err := c.Credentials(t.Context())
				if err != nil || creds != credsA {
					t.Fatalf("first Credentials after a failed init fetch = %v; want credsA", err)
				}
				if n := c.Fetches(); n != 2 {
					t.Errorf("Fetches = %d, want 2 (the failure was not cached)", n)
				}
				out := logs.String()
				if n := strings.Count(out, "secret: fetch failed"); n != 1 {
					t.Errorf("%d failed fetches logged, want 1:\n%s", n, out)
				}
				assertNoSecret(t, "logs", out)
			})
		})
	}
}

// A fetch started in init, frozen with the environment (provisioned
// concurrency) and found past its own timeout at the first invocation is not
// joined: the first call fetches afresh at once.
func TestInitFetchFrozenPastItsTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake, clk := newFake(secretJSON(credsA)), newClock()
		frozen := make(chan struct{})
		defer close(frozen)
		fake.setBlock(frozen)
		c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithClock(clk.Now))
		initCtx, endInit := context.WithCancel(t.Context())
		go func() { _, _ = c.Credentials(initCtx) }()
		synctest.Wait()
		endInit() // init's bound passes; then the environment is frozen
		synctest.Wait()

		clk.Add(secret.DefaultFetchTimeout) // wall time while frozen; the fetch's timer has not run
		fake.setBlock(nil)
		start := time.Now()
		creds, err := c.Credentials(t.Context())
		if err != nil || creds != credsA {
			t.Fatalf("first Credentials after the thaw = %v; want credsA", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("first call waited %v for the frozen fetch", waited)
		}
		if n := c.Fetches(); n != 2 {
			t.Errorf("Fetches = %d, want 2 (a fresh fetch)", n)
		}
	})
}

// Past the TTL, a refresh that fails because Secrets Manager cannot answer is
// answered with the cached credentials for the grace period; other failures,
// and any failure once the grace period is over, are errors.
func TestStaleOnError(t *testing.T) {
	t.Parallel()
	const (
		ttl          = 5 * time.Minute
		grace        = 15 * time.Minute
		fetchTimeout = 3 * time.Second
	)
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}
	tests := []struct {
		name        string
		opts        []secret.Option
		after       time.Duration // time between the first fetch and the failing one
		value       string
		err         error
		hang        bool  // Secrets Manager does not answer
		firstErr    error // of the call past the TTL; nil: credsA, served while the refresh runs
		wantErr     error // of the call after that refresh failed; nil: credsA
		wantStale   int
		wantFetches int
	}{
		{name: "unavailable just past the TTL", after: ttl, err: errors.New("connection reset"), wantStale: 1, wantFetches: 2},
		{name: "unavailable just before the grace period ends", after: ttl + grace - time.Nanosecond, err: errors.New("connection reset"), wantStale: 1, wantFetches: 2},
		{name: "unavailable when the grace period ends", after: ttl + grace, err: errors.New("connection reset"), firstErr: secret.ErrUnavailable, wantErr: secret.ErrUnavailable, wantFetches: 3},
		{name: "throttled", after: ttl, err: &smithy.GenericAPIError{Code: "ThrottlingException"}, wantStale: 1, wantFetches: 2},
		{name: "no answer within the fetch timeout", after: ttl, hang: true, wantStale: 1, wantFetches: 2},
		{name: "default grace period", opts: []secret.Option{}, after: ttl + secret.DefaultStaleGrace - time.Second, err: errors.New("connection reset"), wantStale: 1, wantFetches: 2},
		{name: "grace period off", opts: []secret.Option{secret.WithStaleGrace(0)}, after: ttl, err: errors.New("connection reset"), firstErr: secret.ErrUnavailable, wantErr: secret.ErrUnavailable, wantFetches: 3},
		// A configuration error is no outage: once a refresh has met it, calls wait for a fetch and get it.
		{name: "access denied", after: ttl, err: denied, wantErr: secret.ErrConfiguration, wantFetches: 3},
		{name: "malformed value", after: ttl, value: `{"AppId": 1}`, wantErr: secret.ErrConfiguration, wantFetches: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var logs testutil.Buffer
				opts := tt.opts
				if opts == nil {
					opts = []secret.Option{secret.WithStaleGrace(grace)}
				}
				opts = append(opts, secret.WithFetchTimeout(fetchTimeout),
					secret.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
				fake := newFake(secretJSON(credsA))
				c := secret.NewCache(fake, testSecretID, ttl, opts...)
				if _, err := c.Credentials(t.Context()); err != nil {
					t.Fatal(err)
				}

				time.Sleep(tt.after)
				value := tt.value
				if value == "" {
					value = secretJSON(credsB)
				}
				fake.set(value, tt.err)
				if tt.hang {
					fake.setBlock(make(chan struct{}))
				}
				check := func(step string, got zim.Credentials, err, wantErr error) {
					t.Helper()
					if wantErr != nil {
						if !errors.Is(err, wantErr) {
							t.Fatalf("%s: error = %v, want %v", step, err, wantErr)
						}
						assertNoSecret(t, "error", err.Error())
					} else if err != nil || got != credsA {
						t.Fatalf("%s: Credentials = secret %.4q..., %v; want the cached credsA", step, got.ServerSecret, err)
					}
				}
				got, err := c.Credentials(t.Context())
				check("past the TTL", got, err, tt.firstErr)
				if tt.hang {
					time.Sleep(fetchTimeout)
				}
				synctest.Wait() // the refresh has failed
				got, err = c.Credentials(t.Context())
				check("after the refresh failed", got, err, tt.wantErr)
				if n := c.StaleServed(); n != tt.wantStale {
					t.Errorf("StaleServed = %d, want %d", n, tt.wantStale)
				}
				if n := c.Fetches(); n != tt.wantFetches {
					t.Errorf("Fetches = %d, want %d", n, tt.wantFetches)
				}
				out := logs.String()
				if n := strings.Count(out, "serving the cached credentials"); n != tt.wantStale {
					t.Errorf("%d log lines say stale credentials are served, want %d:\n%s", n, tt.wantStale, out)
				}
				assertNoSecret(t, "logs", out)
			})
		})
	}
}

// During an outage, callers past the TTL are answered at once with the cached
// credentials; one background fetch at a time retries, no more often than the
// minimum refresh interval, each failure logged once; the first fetch that
// succeeds ends it.
func TestStaleDuringAnOutage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const (
			ttl          = time.Minute
			minRefresh   = 2 * time.Second
			fetchTimeout = 5 * time.Second
		)
		var logs testutil.Buffer
		fake := newFake(secretJSON(credsA))
		c := secret.NewCache(fake, testSecretID, ttl, secret.WithMinRefreshInterval(minRefresh),
			secret.WithFetchTimeout(fetchTimeout), secret.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
		call := func(step string, want zim.Credentials, wantFetches int) {
			t.Helper()
			start := time.Now()
			got, err := c.Credentials(t.Context())
			if err != nil || got != want {
				t.Fatalf("%s: Credentials = secret %.4q..., %v; want %.4q...", step, got.ServerSecret, err, want.ServerSecret)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf("%s: waited %v, want an answer at once", step, waited)
			}
			if n := c.Fetches(); n != wantFetches {
				t.Errorf("%s: Fetches = %d, want %d", step, n, wantFetches)
			}
		}
		call("first fetch", credsA, 1)

		time.Sleep(ttl)
		fake.set(secretJSON(credsB), errors.New("HTTP 500"))
		call("refresh starts, served while it runs", credsA, 2)
		synctest.Wait() // and fails
		call("within the retry interval", credsA, 2)

		time.Sleep(minRefresh)
		hung := make(chan struct{})
		fake.setBlock(hung)
		call("retry interval passed: background retry", credsA, 3)
		call("while the retry is in flight", credsA, 3)
		time.Sleep(fetchTimeout) // the retry times out
		synctest.Wait()

		fake.setBlock(nil)
		fake.set(secretJSON(credsB), nil) // Secrets Manager is back, with a rotated secret
		call("within the retry interval again", credsA, 3)
		time.Sleep(minRefresh)
		call("background retry that succeeds", credsA, 4)
		synctest.Wait()
		call("after the outage", credsB, 4)

		// Every call after the first failure, until the successful retry ended.
		if n := c.StaleServed(); n != 5 {
			t.Errorf("StaleServed = %d, want 5", n)
		}
		out := logs.String()
		if n := strings.Count(out, "serving the cached credentials"); n != 2 {
			t.Errorf("%d log lines say stale credentials are served, want 2 (one per failed fetch):\n%s", n, out)
		}
		assertNoSecret(t, "logs", out)
	})
}

// An invalid signature (Refresh) forces a fresh fetch even while stale
// credentials are being served, and the credentials ZEGO refused are then
// never served stale: a failed fetch is an error.
func TestRefreshNeverFallsBackToStale(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fake, clk := newFake(secretJSON(credsA)), newClock()
		c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithClock(clk.Now))
		if _, err := c.Credentials(t.Context()); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
		fake.set(secretJSON(credsB), errors.New("connection reset"))
		for range 2 { // the first one's refresh fails: the second is served stale
			if got, err := c.Credentials(t.Context()); err != nil || got != credsA {
				t.Fatalf("Credentials during the outage = %v; want the cached credsA", err)
			}
			synctest.Wait()
		}

		// ZEGO refuses credsA: the refresh fetches at once, and fails.
		if got, err := c.Refresh(t.Context(), credsA); !errors.Is(err, secret.ErrUnavailable) || got != (zim.Credentials{}) {
			t.Fatalf("Refresh = AppId %d, %v; want no credentials and ErrUnavailable", got.AppID, err)
		}
		if n := c.Fetches(); n != 3 {
			t.Errorf("Fetches = %d after Refresh, want 3 (Refresh fetched)", n)
		}
		if got, err := c.Credentials(t.Context()); !errors.Is(err, secret.ErrUnavailable) || got != (zim.Credentials{}) {
			t.Errorf("Credentials after the refused refresh = AppId %d, %v; want ErrUnavailable, not the refused credentials", got.AppID, err)
		}
		if n := c.StaleServed(); n != 1 {
			t.Errorf("StaleServed = %d, want 1 (before the refusal only)", n)
		}

		// Once Secrets Manager answers, the new value is used.
		fake.set(secretJSON(credsB), nil)
		if got, err := c.Credentials(t.Context()); err != nil || got != credsB {
			t.Errorf("Credentials after recovery = %v; want credsB", err)
		}
	})
}

// Debug logs of successful fetches, rotations and failures name the secret
// and never its value.
func TestLogsNeverContainTheSecret(t *testing.T) {
	t.Parallel()
	var buf testutil.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fake, clk := newFake(secretJSON(credsA)), newClock()
	// No grace: each call past the TTL waits for its fetch, so each step logs its own.
	c := secret.NewCache(fake, testSecretID, time.Minute, secret.WithClock(clk.Now), secret.WithLogger(log), secret.WithStaleGrace(0))

	steps := []struct {
		value string
		err   error
	}{
		{value: secretJSON(credsA)},
		{value: secretJSON(credsB)},
		{value: `{"AppId": 7, "ServerSecret": "` + secretA + `zz"}`},
		{value: secretJSON(credsA), err: errors.New("throttled")},
	}
	for _, s := range steps {
		fake.set(s.value, s.err)
		_, _ = c.Credentials(t.Context())
		clk.Add(time.Minute)
	}
	out := buf.String()
	for _, want := range []string{"secret: fetched", "secret: credentials changed", "secret: fetch failed", testSecretID} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("logs do not contain %q:\n%s", want, out)
		}
	}
	assertNoSecret(t, "logs", out)
}

func BenchmarkCredentialsCached(b *testing.B) {
	c := secret.NewCache(newFake(secretJSON(credsA)), testSecretID, time.Hour)
	ctx := b.Context()
	if _, err := c.Credentials(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Credentials(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Within the TTL too, credentials ZEGO refused are not handed out again after
// a Refresh that could not fetch: every call signed with them would fail.
func TestRefusedCredentialsWithinTheTTL(t *testing.T) {
	t.Parallel()
	fake, clk := newFake(secretJSON(credsA)), newClock()
	c := secret.NewCache(fake, testSecretID, 5*time.Minute, secret.WithClock(clk.Now))
	if _, err := c.Credentials(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Second)
	fake.set(secretJSON(credsB), errors.New("connection reset"))
	if _, err := c.Refresh(t.Context(), credsA); !errors.Is(err, secret.ErrUnavailable) {
		t.Fatalf("Refresh = %v, want ErrUnavailable", err)
	}
	if got, err := c.Credentials(t.Context()); !errors.Is(err, secret.ErrUnavailable) || got != (zim.Credentials{}) {
		t.Errorf("Credentials after the refused refresh = AppId %d, %v; want ErrUnavailable, not the refused credentials", got.AppID, err)
	}
	fake.set(secretJSON(credsB), nil)
	if got, err := c.Credentials(t.Context()); err != nil || got != credsB {
		t.Errorf("Credentials after recovery = %v; want credsB", err)
	}
}
