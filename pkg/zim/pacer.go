package zim

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"
)

// lateSlack is how long after its reserved time a request may still go: about
// half of the 3% headroom at 20/s (31 ms), which also absorbs jitter on the way.
const lateSlack = 15 * time.Millisecond

// errNoSlot: the next slot comes after the context's deadline.
var errNoSlot = errors.New("zim: no rate-limit slot before the context's deadline")

// pacer is the Client's own Limiter: a rate.Limiter, except that a caller
// woken more than lateSlack after its reserved time (a stalled process or
// machine) reserves again instead of sending: sent late, its request would
// bunch with the ones reserved after it into one of ZEGO's one-second windows.
type pacer struct {
	lim *rate.Limiter
	// late reports whether a caller woke too late for the time it reserved;
	// tests replace it, since a timer on virtual time never fires late.
	late func(due time.Time) bool
}

func (p *pacer) Wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		r := p.lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		if d > 0 {
			if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
				r.CancelAt(now)
				return errNoSlot
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return ctx.Err()
			}
		}
		late := p.late
		if late == nil {
			late = func(due time.Time) bool { return time.Since(due) > lateSlack }
		}
		if !late(now.Add(d)) {
			return nil
		}
	}
}
