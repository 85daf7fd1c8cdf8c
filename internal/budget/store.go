package budget

import "context"

// Store holds the pool's theoretical arrival time, Tat: the earliest time
// (Unix microseconds) at which the pool's next slot is free. Both methods are
// one conditional write, atomic at the store, so that no slot is handed out
// twice; neither reads before it writes. Tat only grows: an instance that has
// seen a Tat knows the current one is no earlier.
type Store interface {
	// Start opens the pool after a pause: when there is no Tat yet or
	// Tat < now, it sets Tat to tat and returns (tat, true); the caller's
	// slots are tat−k·T, …, tat−T, the first of them no earlier than now.
	// Otherwise it changes nothing and returns the Tat it found, false.
	Start(ctx context.Context, now, tat int64) (int64, bool, error)
	// Extend books slots while the pool is busy: when now ≤ Tat ≤ limit, it
	// adds add to Tat and returns the new Tat, true; the caller's slots run
	// from the old Tat up to the new one. Otherwise it changes nothing and
	// returns the Tat it found (0 when there is none), false.
	Extend(ctx context.Context, now, limit, add int64) (int64, bool, error)
}
