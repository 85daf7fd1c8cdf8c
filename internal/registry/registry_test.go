package registry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	jobA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	jobB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestRegistry() (*Registry, *Memory, *clock) {
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m := NewMemory()
	return New(m, WithClock(c.Now)), m, c
}

// within is a context whose deadline (a round's lease) is d from the clock's now.
func within(t *testing.T, c *clock, d time.Duration) context.Context {
	ctx, cancel := context.WithDeadline(t.Context(), c.Now().Add(d))
	t.Cleanup(cancel)
	return ctx
}

func round(job string, r int, started time.Time) Round {
	return Round{AppID: 42, FromUserID: "alice", JobID: job, Round: r, StartedAt: started}
}

func TestDuplicateStartJoins(t *testing.T) {
	t.Parallel()
	reg, _, c := newTestRegistry()
	start := c.Now()
	d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 1, start))
	if err != nil || !d.Run || d.Joined != nil {
		t.Fatalf("first: %+v, %v", d, err)
	}
	// Round 1 ends, handing on with counts.
	c.Add(10 * time.Second)
	if err := reg.End(t.Context(), round(jobA, 1, start), Status{State: Running, Deleted: 190}, false); err != nil {
		t.Fatal(err)
	}
	// The same request again (a producer's retry): joins, with the counts.
	c.Add(time.Second)
	d, err = reg.Begin(within(t, c, 10*time.Second), round(jobB, 1, c.Now()))
	if err != nil || d.Run || d.Joined == nil || d.Joined.JobID != jobA || d.Joined.Deleted != 190 || d.Joined.State != Running {
		t.Fatalf("second: %+v (%+v), %v", d, d.Joined, err)
	}
	// The same user in another app is another user.
	other := round(jobB, 1, c.Now())
	other.AppID = 43
	if d, err := reg.Begin(within(t, c, time.Second), other); err != nil || !d.Run {
		t.Fatalf("other app: %+v, %v", d, err)
	}
}

func TestDuplicateAndStaleContinuationsStop(t *testing.T) {
	t.Parallel()
	reg, _, c := newTestRegistry()
	start := c.Now()
	if d, err := reg.Begin(within(t, c, 3*time.Second), round(jobA, 1, start)); err != nil || !d.Run {
		t.Fatal(d, err)
	}
	c.Add(3 * time.Second)
	if err := reg.End(t.Context(), round(jobA, 1, start), Status{Deleted: 60}, false); err != nil {
		t.Fatal(err)
	}
	// Round 2 delivered twice at once: one runs.
	c.Add(time.Second)
	d1, err1 := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start))
	d2, err2 := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start))
	if err1 != nil || err2 != nil || !d1.Run || d2.Run || !strings.Contains(d2.Reason, "duplicate") {
		t.Fatalf("round 2 twice: %+v %v, %+v %v", d1, err1, d2, err2)
	}
	c.Add(10 * time.Second)
	if err := reg.End(t.Context(), round(jobA, 2, start), Status{Deleted: 190}, false); err != nil {
		t.Fatal(err)
	}
	// A copy of round 2 that comes back much later (its SendMessage timed
	// out after SQS took it, and the round was retried): it ended, so it stops.
	c.Add(time.Hour)
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start)); err != nil || d.Run {
		t.Fatalf("late round 2: %+v, %v", d, err)
	}
	// A stale continuation from before (round 1's copy with Round 2 is gone; a round 4 skipping 3).
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 4, start)); err != nil || d.Run || !strings.Contains(d.Reason, "stale") {
		t.Fatalf("round 4 after 2: %+v, %v", d, err)
	}
	// Round 3 still runs, and the counts are over every round (each End adds its round's own).
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 3, start)); err != nil || !d.Run {
		t.Fatalf("round 3: %+v, %v", d, err)
	}
	c.Add(5 * time.Second)
	if err := reg.End(t.Context(), round(jobA, 3, start), Status{State: Complete, Deleted: 50, AlreadyDeleted: 2}, false); err != nil {
		t.Fatal(err)
	}
	st, err := reg.Latest(t.Context(), 42, "alice")
	if err != nil || st.JobID != jobA || st.State != Complete || st.Deleted != 300 || st.AlreadyDeleted != 2 || st.Rounds != 3 ||
		!st.StartedAt.Equal(start) || st.CompletedAt == nil || !st.UpdatedAt.Equal(*st.CompletedAt) {
		t.Fatalf("status %+v, %v", st, err)
	}
	// An ended job's continuation stops; a new request starts a new job.
	if d, err := reg.Begin(within(t, c, time.Second), round(jobA, 4, start)); err != nil || d.Run || !strings.Contains(d.Reason, "ended") {
		t.Fatalf("after the end: %+v, %v", d, err)
	}
	if d, err := reg.Begin(within(t, c, time.Second), round(jobB, 1, c.Now())); err != nil || !d.Run || d.TakenOver != "" {
		t.Fatalf("new job: %+v, %v", d, err)
	}
}

func TestFailedRoundRunsAgain(t *testing.T) {
	t.Parallel()
	reg, _, c := newTestRegistry()
	start := c.Now()
	reg.Begin(within(t, c, time.Second), round(jobA, 1, start))
	reg.End(t.Context(), round(jobA, 1, start), Status{Deleted: 5}, false)
	if d, _ := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start)); !d.Run {
		t.Fatal("round 2")
	}
	// It fails without progress: its record comes back after the visibility timeout.
	if err := reg.End(t.Context(), round(jobA, 2, start), Status{Deleted: 5, Failed: 3, State: Running}, true); err != nil {
		t.Fatal(err)
	}
	if d, _ := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start)); d.Run {
		t.Fatal("round 2 ran again inside its lease")
	}
	c.Add(60 * time.Second)
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start)); err != nil || !d.Run {
		t.Fatalf("the queue's retry of round 2: %+v, %v", d, err)
	}
}

func TestTakeoverAfterTheAge(t *testing.T) {
	t.Parallel()
	reg, _, c := newTestRegistry()
	start := c.Now()
	reg.Begin(within(t, c, 10*time.Second), round(jobA, 1, start))
	reg.End(t.Context(), round(jobA, 1, start), Status{Deleted: 190}, false)
	// The continuation is lost. Just before the takeover age: joined.
	c.Add(TakeoverAge - time.Second)
	if d, _ := reg.Begin(within(t, c, 10*time.Second), round(jobB, 1, c.Now())); d.Run || d.Joined == nil || d.Joined.JobID != jobA {
		t.Fatalf("before the age: %+v", d)
	}
	c.Add(2 * time.Second)
	d, err := reg.Begin(within(t, c, 10*time.Second), round(jobB, 1, c.Now()))
	if err != nil || !d.Run || d.TakenOver != jobA {
		t.Fatalf("after the age: %+v, %v", d, err)
	}
	old, err := reg.Job(t.Context(), jobA)
	if err != nil || old.State != Stopped || !strings.Contains(old.Outcome, jobB) || old.Deleted != 190 {
		t.Fatalf("the old job's status: %+v, %v", old, err)
	}
	// The old chain, if it comes back, stops: never two at once.
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start)); err != nil || d.Run || !strings.Contains(d.Reason, "taken over") {
		t.Fatalf("old chain: %+v, %v", d, err)
	}
	// The old chain's end (a round that ran across the takeover) writes nothing.
	if err := reg.End(t.Context(), round(jobA, 1, start), Status{State: Complete}, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("old end: %v", err)
	}
	if st, _ := reg.Latest(t.Context(), 42, "alice"); st.JobID != jobB || st.State != Running {
		t.Fatalf("latest: %+v", st)
	}
}

func TestNeverTwoOwners(t *testing.T) {
	t.Parallel()
	reg, _, c := newTestRegistry()
	var mu sync.Mutex
	running := map[string]int{}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id := strings.Repeat(string(rune('a'+i%6)), 32)
			d, err := reg.Begin(within(t, c, time.Minute), round(id, 1, c.Now()))
			if err != nil {
				t.Error(err)
			}
			if d.Run {
				mu.Lock()
				running[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(running) != 1 {
		t.Fatalf("jobs started: %v, want one", running)
	}
}

func TestStatusTTLAndCap(t *testing.T) {
	t.Parallel()
	reg, m, c := newTestRegistry()
	start := c.Now()
	reg.Begin(within(t, c, time.Second), round(jobA, 1, start))
	if exp, ok := m.Expires(jobA); !ok || !exp.Equal(start.Add(30*24*time.Hour)) {
		t.Fatalf("first status expires %v", exp)
	}
	c.Add(time.Hour)
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = "c"
	}
	if err := reg.End(t.Context(), round(jobA, 1, start), Status{State: Stopped, Outcome: "upstream_error", Failed: 30, FailedConvIDs: ids}, false); err != nil {
		t.Fatal(err)
	}
	st, _ := reg.Job(t.Context(), jobA)
	if exp, _ := m.Expires(jobA); !exp.Equal(c.Now().Add(Retention)) || len(st.FailedConvIDs) != MaxFailedConvIDs || st.Failed != 30 {
		t.Fatalf("status %+v expires %v", st, exp)
	}
	if _, err := reg.Job(t.Context(), jobB); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
	if _, err := reg.Latest(t.Context(), 42, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestNextRoundWaitsForAnOpenRound: round 2 that comes while round 1 has not
// recorded its end (it may still run) waits; after round 1's lease it runs.
// A redelivered first round of the same job (same id) is a retry, never a
// second job.
func TestNextRoundWaitsForAnOpenRound(t *testing.T) {
	t.Parallel()
	reg, _, c := newTestRegistry()
	start := c.Now()
	if d, _ := reg.Begin(within(t, c, 10*time.Second), round(jobA, 1, start)); !d.Run {
		t.Fatal("round 1")
	}
	if d, _ := reg.Begin(within(t, c, 10*time.Second), round(jobA, 1, start)); d.Run || !strings.Contains(d.Reason, "duplicate") {
		t.Fatalf("round 1 delivered twice: %+v", d)
	}
	c.Add(5 * time.Second)
	d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start))
	if err != nil || d.Run || !d.Wait {
		t.Fatalf("round 2 while round 1 is open: %+v, %v", d, err)
	}
	c.Add(time.Minute) // round 1's lease (its deadline + 5 s) is over
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 2, start)); err != nil || !d.Run {
		t.Fatalf("round 2 after round 1's lease: %+v, %v", d, err)
	}
	c.Add(time.Minute)
	if err := reg.End(t.Context(), round(jobA, 2, start), Status{State: Complete, Deleted: 9}, false); err != nil {
		t.Fatal(err)
	}
	// The first message delivered once more, after the job completed: no new job.
	if d, err := reg.Begin(within(t, c, 10*time.Second), round(jobA, 1, start)); err != nil || d.Run || !strings.Contains(d.Reason, "ended") {
		t.Fatalf("round 1 after the end: %+v, %v", d, err)
	}
}
