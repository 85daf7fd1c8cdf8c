package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	// headroom spaces slots 3% wider than the rate, as pkg/zim's own limiter
	// does: the slack a one-second window needs for clock skew and jitter.
	headroom = 0.97
	// chunk is how many slots a background call books at once: the second is
	// kept for the instance's next call, halving the writes.
	chunk = 2
	// lateSlack is how late a slot may still be used. A slot is late when the
	// instance comes for it after its time (the store answered slowly, or no
	// call was waiting for a kept slot); sending it later would bunch it with
	// the next slot. It takes half of the 3% headroom (31 ms).
	lateSlack = 15 * time.Millisecond
	// storeTimeout bounds each store call: a slower table is a failing one.
	storeTimeout = 300 * time.Millisecond
	// urgentAhead is how far ahead of now an urgent call books.
	urgentAhead = time.Second
	// The breaker: after a store failure, no call asks the table for
	// pauseFirst; after each failed probe, for twice as long, up to pauseMax.
	pauseFirst = time.Second
	pauseMax   = 2 * time.Second
)

var (
	// ErrNoSlot: no slot can come before the context's deadline. Nothing
	// waited for it.
	ErrNoSlot = errors.New("budget: no rate-limit slot before the context's deadline")
	// ErrUnavailable: the shared table cannot be used and this instance has no
	// floor of its own, so an urgent call fails at once instead of waiting.
	ErrUnavailable = errors.New("budget: the rate budget's table is unavailable and this instance has no floor")

	// errStoreDown: the store failed or the breaker is open.
	errStoreDown = errors.New("budget: store down")
)

// Settings size the budget; every instance of the stack must agree on Rate
// and FloorTotal.
type Settings struct {
	Rate       int // calls per second the whole stack may send (ZEGO_RATE_BUDGET)
	FloorTotal int // the sum of every instance's Floor (ZEGO_RATE_FLOOR_TOTAL)
	Floor      int // this instance's floor: 0 or 1 calls per second without the table (ZEGO_RATE_FLOOR)
}

func (s Settings) validate() error {
	switch {
	case s.Rate < 1:
		return fmt.Errorf("budget: rate %d must be at least 1", s.Rate)
	case s.FloorTotal < 0 || s.FloorTotal >= s.Rate:
		return fmt.Errorf("budget: floor total %d must be 0 or more and less than the rate %d", s.FloorTotal, s.Rate)
	case s.Floor < 0 || s.Floor > 1 || s.Floor > s.FloorTotal:
		return fmt.Errorf("budget: floor %d must be 0 or 1 and counted in the floor total %d", s.Floor, s.FloorTotal)
	}
	return nil
}

// Spacing is the time between two slots of the shared pool:
// 1 / ((Rate − FloorTotal) × 0.97), rounded up to the microsecond.
func (s Settings) Spacing() time.Duration {
	pool := float64(s.Rate - s.FloorTotal)
	return time.Duration(math.Ceil(1e6/(pool*headroom))) * time.Microsecond
}

// Budget hands out this instance's slots: its floor's, and the shared pool's
// from the Store. It is a zim.Limiter, safe for concurrent use.
type Budget struct {
	store   Store
	spacing int64         // T, microseconds
	floor   *rate.Limiter // nil without a floor
	log     *slog.Logger
	errs    atomic.Int64 // store failures so far
	// lateSlots counts the slots given up because their caller woke too late.
	lateSlots atomic.Int64
	timeout   time.Duration // storeTimeout; tests on a loaded machine give moto longer

	// sem lets one call at a time talk to the store: the others would book
	// the same slots, and a kept slot may serve them when it answers.
	sem chan struct{}

	mu        sync.Mutex
	kept      []int64 // booked slots not used yet, ascending, microseconds
	tat       int64   // the latest Tat seen; the store's is no earlier
	lead      int64   // how long the store takes to answer (a moving average), microseconds
	down      bool    // the store failed and has not answered since
	downSince time.Time
	openUntil time.Time // the breaker: no store calls before this
	pause     time.Duration
	waits     []time.Duration // how long each call waited, since Waits last took them
}

// maxWaits bounds the waits kept between two Waits calls (an invocation's
// worth: 15 minutes at 20/s is 18,000).
const maxWaits = 20_000

// New returns the Budget of one instance. log gets one warning when the
// store starts failing and one line when it answers again.
func New(store Store, s Settings, log *slog.Logger) (*Budget, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := newBudget(store, s.Spacing(), log)
	if s.Floor == 1 {
		// 0.97 tokens a second, burst 1: two floor calls are at least
		// 1.03 s apart, so any one-second window holds at most one.
		b.floor = rate.NewLimiter(rate.Limit(headroom), 1)
	}
	return b, nil
}

func newBudget(store Store, spacing time.Duration, log *slog.Logger) *Budget {
	return &Budget{store: store, spacing: spacing.Microseconds(), log: log, timeout: storeTimeout, sem: make(chan struct{}, 1)}
}

// TableErrors is how many store calls have failed since New (throttled, an
// error, slower than the store timeout): a running total for a metric.
func (b *Budget) TableErrors() int { return int(b.errs.Load()) }

// Wait blocks until this instance may send one call, and returns nil then.
// It returns ErrNoSlot at once when no slot can come before ctx's deadline,
// ErrUnavailable for an urgent call when the table is unusable and there is
// no floor, and ctx's error when ctx ends.
func (b *Budget) Wait(ctx context.Context) error {
	start := time.Now()
	var err error
	for {
		var slot int64
		slot, err = b.next(ctx)
		if err != nil || slot == 0 {
			break
		}
		var late bool
		if late, err = b.until(ctx, slot); err != nil || !late {
			break
		}
		// Woken past the slot's slack (a stalled process or machine): sent
		// now, it would bunch with the slots after it. Take another.
		b.lateSlots.Add(1)
	}
	if err == nil {
		b.mu.Lock()
		if len(b.waits) < maxWaits {
			b.waits = append(b.waits, time.Since(start))
		}
		b.mu.Unlock()
	}
	return err
}

// Waits returns how long each call that got a slot waited for it (floor or
// pool), since the last Waits: one invocation's, for a metric.
func (b *Budget) Waits() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.waits
	b.waits = nil
	return w
}

// next finds this call's slot: 0 when the floor's token was taken (the call
// may go now), else a pool slot (Unix microseconds) to wait for.
func (b *Budget) next(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	urgent := PriorityOf(ctx) == Urgent
	for {
		if urgent && b.floorFree() {
			return 0, nil
		}
		if slot, ok := b.takeKept(time.Now()); ok {
			return slot, nil
		}
		if !urgent && b.floorFree() {
			return 0, nil
		}
		slot, retry, err := b.reserve(ctx, urgent)
		switch {
		case errors.Is(err, errStoreDown):
			if b.floor != nil {
				return 0, b.floorWait(ctx)
			}
			if urgent {
				return 0, ErrUnavailable
			}
			retry = b.reopens()
		case err != nil:
			return 0, err
		case slot != 0:
			return slot, nil
		}
		if err := sleep(ctx, retry); err != nil {
			return 0, err
		}
	}
}

// reserve books slots in the pool, one store call at a time per instance.
// It returns a slot to wait for, or a time to try again, or errStoreDown.
func (b *Budget) reserve(ctx context.Context, urgent bool) (slot int64, retry time.Time, err error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, time.Time{}, ctx.Err()
	}
	defer func() { <-b.sem }()

	k, ahead := int64(chunk), b.spacing
	if urgent {
		k, ahead = 1, urgentAhead.Microseconds()
	}
	deadline := int64(math.MaxInt64)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl.UnixMicro()
	}
	for range 3 {
		now := time.Now()
		// Another call may have booked while this one waited for sem.
		if s, ok := b.takeKept(now); ok {
			return s, time.Time{}, nil
		}
		if b.isOpen(now) {
			return 0, time.Time{}, errStoreDown
		}
		nowµ := now.UnixMicro()
		limit := min(nowµ+ahead, deadline)
		tat := b.knownTat()
		if tat > limit {
			if tat > deadline {
				return 0, time.Time{}, ErrNoSlot
			}
			return 0, time.UnixMicro(tat - ahead), nil
		}

		sctx, cancel := context.WithTimeout(ctx, b.timeout)
		var (
			got   int64
			ok    bool
			first int64
		)
		if tat < nowµ {
			// The idle pool's first slot allows for the store's usual
			// answer time, less half the slack a slot may be late: a slow
			// table (moto on a busy machine) then does not make every slot
			// late when it arrives, and a usual answer waits for nothing.
			first = nowµ + max(0, b.knownLead()-lateSlack.Microseconds()/2)
			got, ok, err = b.store.Start(sctx, nowµ, first+k*b.spacing)
		} else {
			got, ok, err = b.store.Extend(sctx, nowµ, limit, k*b.spacing)
			first = got - k*b.spacing
		}
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return 0, time.Time{}, ctx.Err()
		case err != nil:
			b.failed(err)
			return 0, time.Time{}, errStoreDown
		}
		b.answered(got, ok, time.Since(now))
		if !ok {
			continue // the Tat found decides the next try
		}
		if s, ok := b.hand(first, k); ok {
			return s, time.Time{}, nil
		}
	}
	return 0, time.Now(), nil
}

// hand returns the first of k booked slots that is not too late, and keeps
// the rest for the instance's next calls.
func (b *Budget) hand(first, k int64) (int64, bool) {
	oldest := time.Now().Add(-lateSlack).UnixMicro()
	for i := range k {
		s := first + i*b.spacing
		if s < oldest {
			continue
		}
		for j := i + 1; j < k; j++ {
			b.keep(first + j*b.spacing)
		}
		return s, true
	}
	return 0, false
}

// until waits for slot's time; late reports that it woke more than
// lateSlack after it, when the slot must not be used. A slot past ctx's
// deadline is not waited for: ErrNoSlot at once, and the slot stays with the
// instance.
func (b *Budget) until(ctx context.Context, slot int64) (late bool, err error) {
	at := time.UnixMicro(slot)
	d := time.Until(at)
	if d > 0 {
		if dl, ok := ctx.Deadline(); ok && at.After(dl) {
			b.keep(slot)
			return false, ErrNoSlot
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			b.keep(slot)
			return false, ctx.Err()
		}
	}
	return time.Since(at) > lateSlack, nil
}

// LateSlots is how many slots were given up since New because their caller
// woke too late for them: a running total, for tests and a metric.
func (b *Budget) LateSlots() int { return int(b.lateSlots.Load()) }

// sleep waits until at, or returns ErrNoSlot at once if at is past ctx's deadline.
func sleep(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && at.After(dl) {
		return ErrNoSlot
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Budget) floorFree() bool { return b.floor != nil && b.floor.Allow() }

// floorWait waits for the floor's next token: the one pace that needs no table.
func (b *Budget) floorWait(ctx context.Context) error {
	if err := b.floor.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrNoSlot
	}
	return nil
}

// takeKept returns the earliest kept slot that is not too late at now,
// dropping those that are.
func (b *Budget) takeKept(now time.Time) (int64, bool) {
	oldest := now.Add(-lateSlack).UnixMicro()
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.kept) > 0 {
		s := b.kept[0]
		b.kept = slices.Delete(b.kept, 0, 1)
		if s >= oldest {
			return s, true
		}
	}
	return 0, false
}

func (b *Budget) keep(slot int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, _ := slices.BinarySearch(b.kept, slot)
	b.kept = slices.Insert(b.kept, i, slot)
}

func (b *Budget) knownTat() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tat
}

func (b *Budget) knownLead() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lead
}

// answered records a store answer that took took: the new Tat when ok, else
// the Tat found, which is the store's current one (it may be 0 if the item
// was removed).
func (b *Budget) answered(tat int64, ok bool, took time.Duration) {
	b.mu.Lock()
	if ok {
		b.tat = max(b.tat, tat)
	} else {
		b.tat = tat
	}
	b.lead += (took.Microseconds() - b.lead) / 8
	recovered, since := b.down, b.downSince
	b.down = false
	b.mu.Unlock()
	if recovered {
		b.log.Info("rate budget table answers again: this instance takes slots from the shared pool",
			slog.Duration("unavailableFor", time.Since(since)))
	}
}

// failed opens the breaker after a store failure; the first failure of an
// outage is logged.
func (b *Budget) failed(err error) {
	b.errs.Add(1)
	now := time.Now()
	b.mu.Lock()
	first := !b.down
	if first {
		b.down, b.downSince, b.pause = true, now, pauseFirst
	} else {
		b.pause = min(2*b.pause, pauseMax)
	}
	b.openUntil = now.Add(b.pause)
	b.mu.Unlock()
	if first {
		floor := 0
		if b.floor != nil {
			floor = 1
		}
		b.log.Warn("rate budget table unavailable: until it answers again, this instance sends at most its floor",
			slog.Int("floorPerSecond", floor), slog.String("error", err.Error()))
	}
}

func (b *Budget) isOpen(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.openUntil)
}

func (b *Budget) reopens() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openUntil
}
