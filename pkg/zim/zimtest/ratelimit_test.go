package zimtest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// burst sends n DeleteConv requests at the bubble's current time and returns their codes.
func burst(t *testing.T, s *zimtest.Server, app uint32, secret string, n int) []int {
	t.Helper()
	codes := make([]int, n)
	for i := range codes {
		codes[i] = serve(t, s, query("DeleteConv", app, secret, time.Now()), deleteBody("alice", "bob", 0)).Code
	}
	return codes
}

// countCode counts how many of codes equal code.
func countCode(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

func TestRateLimitSlidingWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA), zimtest.WithApp(appB, secretB),
			zimtest.WithMissingConversationCode(0))

		// 20 in one instant are accepted, the 21st is refused.
		codes := burst(t, s, appA, secretA, 21)
		if countCode(codes[:20], 0) != 20 || codes[20] != 660300005 {
			t.Fatalf("codes at t=0: %v, want 20 × 0 then 660300005", codes)
		}
		// Another app has its own window.
		if codes := burst(t, s, appB, secretB, 20); countCode(codes, 0) != 20 {
			t.Fatalf("appB: %v, want 20 × 0", codes)
		}
		// Refused requests are not counted: hammering does not extend the wait.
		time.Sleep(999 * time.Millisecond)
		if codes := burst(t, s, appA, secretA, 50); countCode(codes, 660300005) != 50 {
			t.Fatalf("at t=999ms: %v, want all 660300005", codes)
		}
		// At t=1s the requests of t=0 leave the window (t-1s, t].
		time.Sleep(time.Millisecond)
		codes = burst(t, s, appA, secretA, 21)
		if countCode(codes[:20], 0) != 20 || codes[20] != 660300005 {
			t.Fatalf("codes at t=1s: %v, want 20 × 0 then 660300005", codes)
		}
	})
}

func TestRateLimitWindowSlides(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA), zimtest.WithMissingConversationCode(0))
		steps := []struct {
			after    time.Duration // sleep before the burst
			n        int
			accepted int
		}{
			{0, 10, 10},                      // t=0: 10 in the window
			{500 * time.Millisecond, 15, 10}, // t=0.5s: 10 more fit
			{499 * time.Millisecond, 5, 0},   // t=0.999s: still 20 in (t-1s, t]
			{time.Millisecond, 15, 10},       // t=1s: the first 10 have left
			{500 * time.Millisecond, 15, 10}, // t=1.5s: the next 10 have left
		}
		for i, st := range steps {
			time.Sleep(st.after)
			codes := burst(t, s, appA, secretA, st.n)
			if got := countCode(codes, 0); got != st.accepted || countCode(codes, 660300005) != st.n-st.accepted {
				t.Fatalf("step %d: accepted %d of %d (%v), want %d", i, got, st.n, codes, st.accepted)
			}
		}
	})
}

func TestRateLimitCountsOnlyAcceptedRequests(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA), zimtest.WithMissingConversationCode(0))
		if codes := burst(t, s, appA, secretB, 30); countCode(codes, 100000005) != 30 {
			t.Fatalf("bad signatures: %v", codes)
		}
		if codes := burst(t, s, appA, secretA, 20); countCode(codes, 0) != 20 {
			t.Fatalf("after refused requests, good ones: %v, want 20 × 0", codes)
		}
	})
}

func TestRateLimitConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opt      zimtest.Option
		n        int
		accepted int
	}{
		{"default 20 per second", nil, 25, 20},
		{"5 per second", zimtest.WithRateLimit(5, time.Second), 25, 5},
		{"3 per minute", zimtest.WithRateLimit(3, time.Minute), 25, 3},
		{"n 0 disables", zimtest.WithRateLimit(0, time.Second), 100, 100},
		{"n negative disables", zimtest.WithRateLimit(-1, time.Second), 100, 100},
		{"window 0 disables", zimtest.WithRateLimit(5, 0), 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				opts := []zimtest.Option{zimtest.WithApp(appA, secretA), zimtest.WithMissingConversationCode(0)}
				if tt.opt != nil {
					opts = append(opts, tt.opt)
				}
				s := zimtest.NewUnstartedServer(opts...)
				if got := countCode(burst(t, s, appA, secretA, tt.n), 0); got != tt.accepted {
					t.Fatalf("accepted %d of %d, want %d", got, tt.n, tt.accepted)
				}
			})
		})
	}
}

func TestRateLimitWithInjectedClock(t *testing.T) {
	t.Parallel()
	now := t0
	clock := func() time.Time { return now }
	s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA), zimtest.WithClock(clock),
		zimtest.WithRateLimit(2, time.Second), zimtest.WithMissingConversationCode(0))
	send := func() int {
		return serve(t, s, query("DeleteConv", appA, secretA, now), deleteBody("alice", "bob", 0)).Code
	}
	steps := []struct {
		at   time.Duration
		want int
	}{
		{0, 0}, {0, 0}, {0, 660300005},
		{999 * time.Millisecond, 660300005},
		{time.Second, 0}, {time.Second, 0}, {time.Second, 660300005},
	}
	for i, st := range steps {
		now = t0.Add(st.at)
		if got := send(); got != st.want {
			t.Fatalf("step %d at +%s: Code = %d, want %d", i, st.at, got, st.want)
		}
	}
}
