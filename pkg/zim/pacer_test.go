package zim

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestPacerReservesAgainWhenWokenLate: a caller that woke too late for its
// slot does not send in it (it would bunch with the next) but takes the next
// slot, one spacing later; on time it goes at once; a slot past the deadline
// is refused without waiting.
func TestPacerReservesAgainWhenWokenLate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		lateOnce := 1
		p := &pacer{lim: rate.NewLimiter(10, 1), late: func(time.Time) bool {
			lateOnce--
			return lateOnce >= 0
		}}
		start := time.Now()
		if err := p.Wait(t.Context()); err != nil { // reserved at start, "woke late", reserved again
			t.Fatal(err)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("a late caller went after %v, want the next slot at 100ms", got)
		}
		if err := p.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Fatalf("the next caller went at %v, want 200ms", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := p.Wait(ctx); !errors.Is(err, errNoSlot) || time.Since(start) != 200*time.Millisecond {
			t.Fatalf("slot past the deadline: %v after %v, want errNoSlot at once", err, time.Since(start))
		}
	})
}
