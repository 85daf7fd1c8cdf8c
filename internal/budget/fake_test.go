package budget

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
)

// memStore is the table in memory: the same conditional writes as
// DynamoStore, each taking latency (half before it applies, half after), and
// counting the write requests DynamoDB would bill.
type memStore struct {
	latency time.Duration

	mu        sync.Mutex
	tat       int64
	has       bool
	writes    int // every UpdateItem, as billed
	conflicts int // those whose condition failed
}

func (s *memStore) Start(ctx context.Context, now, tat int64) (int64, bool, error) {
	return s.write(ctx, func() (int64, bool) {
		if !s.has || s.tat < now {
			s.tat, s.has = tat, true
			return tat, true
		}
		return s.tat, false
	})
}

func (s *memStore) Extend(ctx context.Context, now, limit, add int64) (int64, bool, error) {
	return s.write(ctx, func() (int64, bool) {
		if s.has && s.tat >= now && s.tat <= limit {
			s.tat += add
			return s.tat, true
		}
		return s.tat, false
	})
}

func (s *memStore) write(ctx context.Context, apply func() (int64, bool)) (int64, bool, error) {
	if err := pause(ctx, s.latency/2); err != nil {
		return 0, false, err
	}
	s.mu.Lock()
	s.writes++
	tat, ok := apply()
	if !ok {
		s.conflicts++
	}
	s.mu.Unlock()
	if err := pause(ctx, s.latency-s.latency/2); err != nil {
		return 0, false, err
	}
	return tat, ok, nil
}

func (s *memStore) counts() (writes, conflicts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes, s.conflicts
}

func (s *memStore) set(tat int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tat, s.has = tat, true
}

func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
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

// errInjected stands for DynamoDB failing (a 500, throttling, no route).
var errInjected = errors.New("injected: InternalServerError")

// view is one instance's view of the store: while down, every call fails
// after the store's latency; while slow, every call takes a second (or
// until its context ends).
type view struct {
	*memStore
	down, slow func() bool
}

func (v view) Start(ctx context.Context, now, tat int64) (int64, bool, error) {
	if err := v.trouble(ctx); err != nil {
		return 0, false, err
	}
	return v.memStore.Start(ctx, now, tat)
}

func (v view) Extend(ctx context.Context, now, limit, add int64) (int64, bool, error) {
	if err := v.trouble(ctx); err != nil {
		return 0, false, err
	}
	return v.memStore.Extend(ctx, now, limit, add)
}

func (v view) trouble(ctx context.Context) error {
	switch {
	case v.down != nil && v.down():
		if err := pause(ctx, v.latency); err != nil {
			return err
		}
		return errInjected
	case v.slow != nil && v.slow():
		if err := pause(ctx, time.Second); err != nil {
			return err
		}
	}
	return nil
}

// between is true from a to b after start, on the (fake) clock.
func between(start time.Time, a, b time.Duration) func() bool {
	return func() bool { d := time.Since(start); return d >= a && d < b }
}

// newTestBudget builds a Budget over s, failing the test on a bad setting.
func newTestBudget(t testing.TB, s Store, set Settings, log *slog.Logger) *Budget {
	t.Helper()
	b, err := New(s, set, log)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sends records when calls went out, per instance and in all.
type sends struct {
	mu  sync.Mutex
	all []time.Time
	by  map[string][]time.Time
}

func (s *sends) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.all = append(s.all, now)
	if s.by == nil {
		s.by = map[string][]time.Time{}
	}
	s.by[name] = append(s.by[name], now)
}

// maxInWindow is the most calls of ts in any one-second window [t, t+1s).
func maxInWindow(ts []time.Time) int {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i, j := 0, 0; i < len(ts); i++ {
		for j < len(ts) && ts[j].Before(ts[i].Add(time.Second)) {
			j++
		}
		most = max(most, j-i)
	}
	return most
}

// within returns the times of ts in [from, to).
func within(ts []time.Time, from, to time.Time) []time.Time {
	var out []time.Time
	for _, t := range ts {
		if !t.Before(from) && t.Before(to) {
			out = append(out, t)
		}
	}
	return out
}

// background runs a job's workers on b until end: each invocation lasts
// invocation; a worker waits for a slot, sends, and takes zego to answer.
// Errors end the invocation's work for that worker, as they end a job run.
func background(wg *sync.WaitGroup, b *Budget, name string, s *sends, workers int, end time.Time, invocation, zego time.Duration) {
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				ctx, cancel := context.WithDeadline(context.Background(), minTime(time.Now().Add(invocation), end))
				for ctx.Err() == nil {
					if err := b.Wait(ctx); err != nil {
						break
					}
					s.add(name)
					_ = pause(ctx, zego+time.Duration(w)*time.Millisecond)
				}
				<-ctx.Done()
				cancel()
			}
		})
	}
}

// urgentCaller calls every period until end, each call with a 3 s deadline,
// and records how long each Wait took and what it returned.
type urgentCaller struct {
	mu    sync.Mutex
	waits []time.Duration
	errs  []error
}

func (u *urgentCaller) run(wg *sync.WaitGroup, b *Budget, name string, s *sends, end time.Time, period time.Duration) {
	wg.Go(func() {
		for time.Now().Before(end) {
			ctx, cancel := context.WithTimeout(WithPriority(context.Background(), Urgent), 3*time.Second)
			start := time.Now()
			err := b.Wait(ctx)
			u.mu.Lock()
			u.waits = append(u.waits, time.Since(start))
			if err != nil {
				u.errs = append(u.errs, err)
			}
			u.mu.Unlock()
			if err == nil {
				s.add(name)
			}
			cancel()
			_ = pause(context.Background(), period)
		}
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// logLines counts a JSON log's lines at each level.
func logLines(buf *testutil.Buffer) (warn, info int) {
	for l := range strings.Lines(buf.String()) {
		switch {
		case strings.Contains(l, `"level":"WARN"`):
			warn++
		case strings.Contains(l, `"level":"INFO"`):
			info++
		}
	}
	return warn, info
}
