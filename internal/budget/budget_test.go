package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
)

const storeLatency = 6 * time.Millisecond

// TestNeverMoreThanRateBudget: a simulated minute of the stack at the
// template's defaults (RateBudget 20, three API instances with a floor, two
// queue instances), with urgent callers, jobs, and the table failing or slow
// for some instances and not others, then for all: no one-second window holds
// more than RateBudget calls, and an instance that cannot use the table sends
// no more than its floor.
func TestNeverMoreThanRateBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		set := Settings{Rate: 20, FloorTotal: 3}
		store := &memStore{latency: storeLatency}
		start := time.Now()
		end := start.Add(time.Minute)
		allDown := between(start, 50*time.Second, 53*time.Second)
		type trouble struct{ from, to time.Duration }
		instances := []struct {
			name    string
			floor   int
			down    *trouble
			slow    *trouble
			urgent  time.Duration // an urgent caller every so often; 0: a job
			workers int
		}{
			{name: "api-1", floor: 1, urgent: 150 * time.Millisecond},
			{name: "api-2", floor: 1, urgent: 80 * time.Millisecond, down: &trouble{10 * time.Second, 25 * time.Second}},
			{name: "api-3", floor: 1, workers: 4, slow: &trouble{35 * time.Second, 45 * time.Second}},
			{name: "queue-1", workers: 4},
			{name: "queue-2", workers: 4, down: &trouble{20 * time.Second, 40 * time.Second}},
		}
		var (
			s       sends
			wg      sync.WaitGroup
			callers = map[string]*urgentCaller{}
		)
		for _, in := range instances {
			v := view{memStore: store, down: allDown}
			if d := in.down; d != nil {
				mine := between(start, d.from, d.to)
				v.down = func() bool { return mine() || allDown() }
			}
			if d := in.slow; d != nil {
				v.slow = between(start, d.from, d.to)
			}
			b := newTestBudget(t, v, Settings{Rate: set.Rate, FloorTotal: set.FloorTotal, Floor: in.floor}, nil)
			if in.urgent > 0 {
				u := &urgentCaller{}
				callers[in.name] = u
				u.run(&wg, b, in.name, &s, end, in.urgent)
			} else {
				background(&wg, b, in.name, &s, in.workers, end, 10*time.Second, 40*time.Millisecond)
			}
		}
		wg.Wait()

		if got := maxInWindow(s.all); got > set.Rate {
			t.Errorf("a one-second window held %d calls, more than RateBudget %d", got, set.Rate)
		}
		// Slots booked before a failure may still be used for 3 spacings.
		const booked = 250 * time.Millisecond
		for _, in := range instances {
			var spans []trouble
			for _, d := range []*trouble{in.down, in.slow, {50 * time.Second, 53 * time.Second}} {
				if d != nil {
					spans = append(spans, *d)
				}
			}
			for _, d := range spans {
				calls := within(s.by[in.name], start.Add(d.from+booked), start.Add(d.to))
				if got := maxInWindow(calls); got > in.floor {
					t.Errorf("%s: %d calls in one second while the table failed (%v–%v); its floor is %d", in.name, got, d.from, d.to, in.floor)
				}
			}
		}
		for name, u := range callers {
			if len(u.errs) > 0 {
				t.Errorf("%s: %d urgent calls failed, first: %v", name, len(u.errs), u.errs[0])
			}
		}
		writes, conflicts := store.counts()
		t.Logf("%d calls in a minute (%.1f/s), %d writes (%d conditional failures)", len(s.all), float64(len(s.all))/60, writes, conflicts)
		// The jobs keep the pool busy whenever the table answers.
		if min := 14 * 60; len(s.all) < min {
			t.Errorf("%d calls in a minute, want at least %d: the pool went unused", len(s.all), min)
		}
	})
}

// TestLoneJobGetsThePool: one job, nothing else running, gets at least 90%
// of the pool plus its instance's floor, at about half a write per call.
func TestLoneJobGetsThePool(t *testing.T) {
	t.Parallel()
	for _, floor := range []int{0, 1} {
		t.Run(fmt.Sprintf("floor %d", floor), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				set := Settings{Rate: 20, FloorTotal: 2, Floor: floor}
				store := &memStore{latency: storeLatency}
				b := newTestBudget(t, store, set, nil)
				var (
					s  sends
					wg sync.WaitGroup
				)
				background(&wg, b, "job", &s, 4, time.Now().Add(time.Minute), 15*time.Minute, 40*time.Millisecond)
				wg.Wait()

				rate := float64(len(s.all)) / 60
				want := 0.9 * float64(set.Rate-set.FloorTotal+floor)
				writes, conflicts := store.counts()
				perK := 1000 * float64(writes) / float64(len(s.all))
				t.Logf("%.2f calls/s (%.0f%% of RateBudget), %.0f writes per 1,000 calls (%d conditional failures)",
					rate, 100*rate/float64(set.Rate), perK, conflicts)
				if rate < want {
					t.Errorf("%.2f calls/s, want at least %.2f", rate, want)
				}
				if got := maxInWindow(s.all); got > set.Rate-set.FloorTotal+floor {
					t.Errorf("a one-second window held %d calls", got)
				}
				if perK > 560 {
					t.Errorf("%.0f writes per 1,000 calls, want about 500 (two slots per write)", perK)
				}
			})
		})
	}
}

// TestUrgentWaitsAFewSpacings: while two queue instances keep the pool busy,
// an urgent call waits no more than about three spacings for its slot.
func TestUrgentWaitsAFewSpacings(t *testing.T) {
	t.Parallel()
	for _, floor := range []int{0, 1} {
		t.Run(fmt.Sprintf("floor %d", floor), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				set := Settings{Rate: 20, FloorTotal: 2}
				store := &memStore{latency: storeLatency}
				end := time.Now().Add(30 * time.Second)
				var (
					s  sends
					wg sync.WaitGroup
					u  urgentCaller
				)
				for _, name := range []string{"queue-1", "queue-2"} {
					background(&wg, newTestBudget(t, store, set, nil), name, &s, 4, end, 15*time.Minute, 40*time.Millisecond)
				}
				api := set
				api.Floor = floor
				u.run(&wg, newTestBudget(t, store, api, nil), "api", &s, end, 200*time.Millisecond)
				wg.Wait()

				limit := 3*set.Spacing() + 3*storeLatency
				var longest time.Duration
				for _, w := range u.waits {
					longest = max(longest, w)
				}
				t.Logf("%d urgent calls, longest wait %v (spacing %v), %d calls in all", len(u.waits), longest, set.Spacing(), len(s.all))
				if longest > limit {
					t.Errorf("an urgent call waited %v, want at most %v (3 spacings and the table's answers)", longest, limit)
				}
				if len(u.errs) > 0 {
					t.Errorf("%d urgent calls failed, first: %v", len(u.errs), u.errs[0])
				}
				if got := maxInWindow(s.all); got > set.Rate {
					t.Errorf("a one-second window held %d calls", got)
				}
			})
		})
	}
}

// TestTableTrouble: what one Wait does when the table fails, is slow, or
// its pool is booked past the deadline.
func TestTableTrouble(t *testing.T) {
	t.Parallel()
	always := func() bool { return true }
	tests := []struct {
		name     string
		floor    int
		urgent   bool
		down     func(start time.Time) func() bool
		slow     bool
		tat      time.Duration // the pool booked this far ahead; 0: idle
		timeout  time.Duration
		want     error
		elapsed  [2]time.Duration // the Wait returned within [min, max] of fake time
		warn     int
		info     int
		writes   int
		tableErr int
	}{
		{name: "urgent without a floor: fails at once", urgent: true, down: func(time.Time) func() bool { return always },
			timeout: 3 * time.Second, want: ErrUnavailable, elapsed: [2]time.Duration{storeLatency, storeLatency}, warn: 1, tableErr: 1},
		{name: "urgent without a floor, table slow: fails after the store timeout", urgent: true, slow: true,
			timeout: 3 * time.Second, want: ErrUnavailable, elapsed: [2]time.Duration{storeTimeout, storeTimeout}, warn: 1, tableErr: 1},
		{name: "urgent with a floor, table down: the floor", urgent: true, floor: 1, down: func(time.Time) func() bool { return always },
			timeout: 3 * time.Second, want: nil, elapsed: [2]time.Duration{0, 0}},
		{name: "background without a floor waits for the table", down: func(s time.Time) func() bool { return between(s, 0, 4*time.Second) },
			timeout: 30 * time.Second, want: nil, elapsed: [2]time.Duration{4 * time.Second, 6 * time.Second}, warn: 1, info: 1, writes: 1, tableErr: 3},
		{name: "background without a floor, table down past the deadline", down: func(time.Time) func() bool { return always },
			timeout: 1500 * time.Millisecond, want: ErrNoSlot, elapsed: [2]time.Duration{pauseFirst, pauseFirst + 2*storeLatency}, warn: 1, tableErr: 2},
		{name: "background, pool booked past the deadline", tat: 5 * time.Second,
			timeout: 2 * time.Second, want: ErrNoSlot, elapsed: [2]time.Duration{storeLatency, storeLatency}, writes: 1},
		{name: "urgent, pool booked past the deadline", urgent: true, tat: 5 * time.Second,
			timeout: 2 * time.Second, want: ErrNoSlot, elapsed: [2]time.Duration{storeLatency, storeLatency}, writes: 1},
		{name: "urgent, pool booked 1.5 s ahead: waits for it", urgent: true, tat: 1500 * time.Millisecond,
			timeout: 3 * time.Second, want: nil, elapsed: [2]time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}, writes: 2},
		{name: "background, pool booked 1.5 s ahead: waits for it", tat: 1500 * time.Millisecond,
			timeout: 3 * time.Second, want: nil, elapsed: [2]time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond}, writes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				store := &memStore{latency: storeLatency}
				if tt.tat > 0 {
					store.set(start.Add(tt.tat).UnixMicro())
				}
				v := view{memStore: store}
				if tt.down != nil {
					v.down = tt.down(start)
				}
				if tt.slow {
					v.slow = always
				}
				logs := &testutil.Buffer{}
				b := newTestBudget(t, v, Settings{Rate: 20, FloorTotal: 2, Floor: tt.floor}, slog.New(slog.NewJSONHandler(logs, nil)))
				ctx := t.Context()
				if tt.urgent {
					ctx = WithPriority(ctx, Urgent)
				}
				ctx, cancel := context.WithTimeout(ctx, tt.timeout)
				defer cancel()

				err := b.Wait(ctx)
				elapsed := time.Since(start)
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("Wait = %v, want %v", err, tt.want)
				}
				if elapsed < tt.elapsed[0] || elapsed > tt.elapsed[1] {
					t.Errorf("Wait returned after %v, want %v to %v", elapsed, tt.elapsed[0], tt.elapsed[1])
				}
				if w, i := logLines(logs); w != tt.warn || i != tt.info {
					t.Errorf("%d warnings and %d info lines, want %d and %d:\n%s", w, i, tt.warn, tt.info, logs)
				}
				if writes, _ := store.counts(); writes != tt.writes {
					t.Errorf("%d writes reached the table, want %d", writes, tt.writes)
				}
				if got := b.TableErrors(); got != tt.tableErr {
					t.Errorf("TableErrors = %d, want %d", got, tt.tableErr)
				}
			})
		})
	}
}

// TestTableDownKeepsToTheFloor: urgent calls back to back while the table is
// down: one a second from the floor, or none without one, for as long as it
// lasts, then the pool again; one warning and one info line per outage.
func TestTableDownKeepsToTheFloor(t *testing.T) {
	t.Parallel()
	for _, floor := range []int{0, 1} {
		t.Run(fmt.Sprintf("floor %d", floor), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				first, second := between(start, 2*time.Second, 8*time.Second), between(start, 12*time.Second, 14*time.Second)
				store := &memStore{latency: storeLatency}
				logs := &testutil.Buffer{}
				set := Settings{Rate: 20, FloorTotal: 1, Floor: floor}
				b := newTestBudget(t, view{memStore: store, down: func() bool { return first() || second() }},
					set, slog.New(slog.NewJSONHandler(logs, nil)))
				var (
					s      sends
					failed int
				)
				ctx := WithPriority(t.Context(), Urgent)
				for time.Since(start) < 20*time.Second {
					cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					if err := b.Wait(cctx); err != nil {
						if !errors.Is(err, ErrUnavailable) {
							t.Fatalf("Wait = %v, want nil or ErrUnavailable", err)
						}
						failed++
						_ = pause(ctx, 10*time.Millisecond)
					} else {
						s.add("api")
					}
					cancel()
				}
				for _, d := range [][2]time.Duration{{2 * time.Second, 8 * time.Second}, {12 * time.Second, 14 * time.Second}} {
					// A slot booked just before the outage may still be sent.
					from := start.Add(d[0] + set.Spacing() + storeLatency)
					if got := maxInWindow(within(s.all, from, start.Add(d[1]))); got > floor {
						t.Errorf("%d calls in one second while the table was down (%v–%v), floor %d", got, d[0], d[1], floor)
					}
				}
				if got := maxInWindow(s.all); got < 15 {
					t.Errorf("at most %d calls in a second; the pool (19/s) was not used while the table answered", got)
				}
				if (failed > 0) != (floor == 0) {
					t.Errorf("%d calls failed with floor %d", failed, floor)
				}
				if w, i := logLines(logs); w != 2 || i != 2 {
					t.Errorf("%d warnings, %d info lines for two outages, want 2 and 2:\n%s", w, i, logs)
				}
			})
		})
	}
}

// TestKeptSlot: a background call books two slots and keeps the second for
// the instance's next call, unless that call comes too late for it.
func TestKeptSlot(t *testing.T) {
	t.Parallel()
	set := Settings{Rate: 20, FloorTotal: 2}
	T := set.Spacing()
	tests := []struct {
		name   string
		gap    time.Duration // between the first Wait's return and the second's call
		wait   time.Duration // how long the second Wait takes
		writes int
	}{
		{name: "next call early: waits for the kept slot", gap: T / 2, wait: T - storeLatency - T/2, writes: 1},
		{name: "next call a little late: the kept slot", gap: T - storeLatency + lateSlack, wait: 0, writes: 1},
		{name: "next call too late: dropped, a new booking", gap: 2 * T, wait: storeLatency, writes: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				store := &memStore{latency: storeLatency}
				b := newTestBudget(t, store, set, nil)
				if err := b.Wait(t.Context()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tt.gap)
				start := time.Now()
				if err := b.Wait(t.Context()); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != tt.wait {
					t.Errorf("second Wait took %v, want %v", got, tt.wait)
				}
				if writes, _ := store.counts(); writes != tt.writes {
					t.Errorf("%d writes, want %d", writes, tt.writes)
				}
			})
		})
	}
}

func TestWaitCancelled(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{latency: storeLatency}
		store.set(time.Now().Add(time.Hour).UnixMicro())
		b := newTestBudget(t, store, Settings{Rate: 20, FloorTotal: 2}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled before: %v", err)
		}
		ctx, cancel = context.WithCancel(t.Context()) // no deadline: waits
		time.AfterFunc(time.Second, cancel)
		if err := b.Wait(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, ErrNoSlot) {
			t.Errorf("cancelled during the wait: %v", err)
		}
	})
}

func TestSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		set     Settings
		spacing time.Duration
		ok      bool
	}{
		{Settings{Rate: 20}, 51547 * time.Microsecond, true},
		{Settings{Rate: 20, FloorTotal: 2, Floor: 1}, 57274 * time.Microsecond, true},
		{Settings{Rate: 6, FloorTotal: 5}, 1030928 * time.Microsecond, true},
		{Settings{Rate: 0}, 0, false},
		{Settings{Rate: 20, FloorTotal: 20}, 0, false},
		{Settings{Rate: 20, FloorTotal: -1}, 0, false},
		{Settings{Rate: 20, Floor: 1}, 0, false},
		{Settings{Rate: 20, FloorTotal: 2, Floor: 2}, 0, false},
	}
	for _, tt := range tests {
		_, err := New(&memStore{}, tt.set, nil)
		if (err == nil) != tt.ok {
			t.Errorf("%+v: err = %v, want ok %v", tt.set, err, tt.ok)
		}
		if tt.ok && tt.set.Spacing() != tt.spacing {
			t.Errorf("%+v: spacing %v, want %v", tt.set, tt.set.Spacing(), tt.spacing)
		}
	}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if p := PriorityOf(ctx); p != Background {
		t.Errorf("default: %v", p)
	}
	if p := PriorityOf(WithPriority(ctx, Urgent)); p != Urgent {
		t.Errorf("urgent: %v", p)
	}
	if p := PriorityOf(WithPriority(WithPriority(ctx, Urgent), Background)); p != Background {
		t.Errorf("background again: %v", p)
	}
}

// TestWritesPerThousandDeletions counts the table's write requests (each
// UpdateItem, its condition met or not, is one) per 1,000 calls in the
// stack's usual situations over a simulated minute, for docs/performance.md.
func TestWritesPerThousandDeletions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		jobs    []int // floors of the instances running a job
		callers int   // API instances with an urgent caller at 2/s
		most    float64
	}{
		{name: "one job on a queue instance", jobs: []int{0}, most: 520},
		{name: "one job on an API instance", jobs: []int{1}, most: 520},
		{name: "two jobs", jobs: []int{0, 0}, most: 1100},
		{name: "two jobs and HTTP callers on two API instances", jobs: []int{0, 0}, callers: 2, most: 1200},
		{name: "HTTP callers on two API instances, the queue idle", callers: 2, most: 750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				set := Settings{Rate: 20, FloorTotal: 2}
				store := &memStore{latency: storeLatency}
				end := time.Now().Add(time.Minute)
				var (
					s  sends
					wg sync.WaitGroup
				)
				for i, floor := range tt.jobs {
					inst := set
					inst.Floor = floor
					background(&wg, newTestBudget(t, store, inst, nil), fmt.Sprint("job-", i), &s, 4, end, 15*time.Minute, 40*time.Millisecond)
				}
				for i := range tt.callers {
					api := set
					api.Floor = 1
					(&urgentCaller{}).run(&wg, newTestBudget(t, store, api, nil), fmt.Sprint("api-", i), &s, end, 500*time.Millisecond)
				}
				wg.Wait()
				writes, conflicts := store.counts()
				perK := 1000 * float64(writes) / float64(len(s.all))
				t.Logf("%d calls (%.1f/s): %.0f writes per 1,000 (%.0f of them conditional failures)",
					len(s.all), float64(len(s.all))/60, perK, 1000*float64(conflicts)/float64(len(s.all)))
				if perK > tt.most {
					t.Errorf("%.0f writes per 1,000 calls, want at most %.0f", perK, tt.most)
				}
			})
		})
	}
}

// TestSlowTableIdlePool: with a table that answers in 40 ms (slower than a
// slot may be late), an urgent call on an idle pool soon costs one answer,
// not a second booking: the first slot is set when the answer is due.
func TestSlowTableIdlePool(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const latency = 40 * time.Millisecond
		store := &memStore{latency: latency}
		b := newTestBudget(t, store, Settings{Rate: 20, FloorTotal: 2}, nil)
		ctx := WithPriority(t.Context(), Urgent)
		var waits []time.Duration
		for range 40 {
			start := time.Now()
			if err := b.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			waits = append(waits, time.Since(start))
			time.Sleep(200 * time.Millisecond)
		}
		writesBefore, _ := store.counts()
		for range 10 {
			start := time.Now()
			if err := b.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if got := time.Since(start); got > latency+time.Millisecond {
				t.Errorf("Wait took %v on an idle pool, want about one answer (%v); earlier: %v", got, latency, waits)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if writes, _ := store.counts(); writes-writesBefore != 10 {
			t.Errorf("%d writes for 10 calls, want 10", writes-writesBefore)
		}
	})
}

// TestWaitsRecorded: each call that got a slot reports how long it waited,
// once; a call that got none reports nothing.
func TestWaitsRecorded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		set := Settings{Rate: 20, FloorTotal: 2}
		store := &memStore{latency: storeLatency}
		b := newTestBudget(t, store, set, nil)
		for range 4 {
			if err := b.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		store.set(time.Now().Add(time.Hour).UnixMicro())
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := b.Wait(ctx); !errors.Is(err, ErrNoSlot) {
			t.Fatalf("Wait = %v, want ErrNoSlot", err)
		}
		// Two slots a booking: the first call books an idle pool and waits
		// for the store's answer, the second for the kept slot a spacing
		// later; the third books the next two (the pool is busy: its slot
		// is a spacing later), the fourth takes the one kept.
		T := set.Spacing()
		want := []time.Duration{storeLatency, T - storeLatency, T, T}
		got := b.Waits()
		if len(got) != len(want) {
			t.Fatalf("Waits = %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Waits = %v, want %v", got, want)
				break
			}
		}
		if again := b.Waits(); len(again) != 0 {
			t.Errorf("Waits again = %v, want none", again)
		}
	})
}

// TestLateWakeGivesTheSlotUp: a caller that wakes more than lateSlack after its
// slot's time (a stalled process) does not use it, since sent then it would
// bunch with the slots after it (3 calls within 4 ms were seen at ZEGO after a
// 168 ms stall); one woken in time, or a little late, does.
func TestLateWakeGivesTheSlotUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(&memStore{}, 50*time.Millisecond, slog.New(slog.DiscardHandler))
		for _, tc := range []struct {
			from time.Duration // the slot's time from now
			late bool
		}{
			{30 * time.Millisecond, false},
			{-lateSlack + time.Millisecond, false},
			{-lateSlack - time.Millisecond, true},
			{-168 * time.Millisecond, true},
		} {
			late, err := b.until(t.Context(), time.Now().Add(tc.from).UnixMicro())
			if err != nil || late != tc.late {
				t.Errorf("slot %v from now: late %v, err %v; want late %v", tc.from, late, err, tc.late)
			}
		}
	})
}
