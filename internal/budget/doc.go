// Package budget shares ZEGO's rate limit between every instance of the
// stack, so that whoever has work gets it: a Budget is the zim.Limiter of one
// instance (zim.WithLimiter), and its slots come from one sequence kept in a
// table every instance uses.
//
// # Floor and pool
//
// ZEGO counts DeleteConv calls per AppId in one-second windows. The stack's
// RateBudget (at most 20) is split in two, by construction:
//
//   - a floor: an instance with Floor 1 (the API function's) may send one call
//     in any one-second window on its own, paced by a local limiter (0.97
//     tokens a second, burst 1: calls at least 1.03 s apart). It needs no table.
//     FloorTotal is the sum of every instance's floor.
//   - a pool of RateBudget − FloorTotal calls a second, shared: a GCRA
//     ("theoretical arrival time") on one item of the table. Slots are spaced
//     T = 1 / (pool × 0.97) apart in one sequence for the whole stack, so a
//     one-second window holds at most ⌈pool × 0.97⌉ ≤ pool of them.
//
// Any one-second window so holds at most FloorTotal + pool = RateBudget calls,
// whatever the table does: an instance that cannot use it sends at most its
// floor, and slots already booked stay in the sequence.
//
// # The table
//
// The item holds Tat, the time (Unix microseconds) at which the pool's next
// slot is free. It is advanced by one conditional write, never a read then a
// write (see Store): when the pool is idle (no Tat, or Tat < now) a caller
// sets Tat = now + k·T and owns the slots now, now+T, …; when it is busy
// (Tat ≥ now, and not too far ahead) a caller adds k·T and owns the slots from
// the old Tat. A write whose condition fails returns the item, whose Tat says
// which write to try, or how long to wait before trying. Tat only grows, so
// what an instance saw is a lower bound: it does not ask the table while the
// Tat it knows is too far ahead. Each instance waits until each slot's time on
// its own clock, then sends.
//
// # Priority
//
// A call's context says its Priority (WithPriority). Urgent calls (a single
// deletion over HTTP or a direct invoke: someone is waiting) take the floor's
// token when it is free, else the pool's next slot however far ahead it is
// within a second and the context's deadline. Background calls (SQS records,
// every call of a job) book only when Tat ≤ now + T, two slots at a time
// (the second is kept for the instance's next call; a kept slot found more
// than 15 ms past its time is dropped, never sent late). So background work
// never holds the pool more than 3·T ahead, and an urgent call waits about
// three spacings at most (155 ms for a pool of 20/s, 172 ms for the
// template's default pool of 18/s), while a lone job gets 97% of the pool
// plus its instance's floor (17.5/s of 20 with the template's defaults, on a
// queue instance, whose floor is 0; the API instances' idle floors are the
// rest).
//
// # Clocks
//
// Each instance reads its own clock. The 3% headroom (31 ms per second at any
// rate: a window of 1.03 s holds the pool) absorbs, together: clock skew
// between instances, jitter of the path to ZEGO, and lateness of a slot (a
// slot more than 15 ms late is not used). Lambda's clocks follow the Amazon
// Time Sync Service and are within about a millisecond of each other. With
// more than about 15 ms of skew plus jitter, a window may hold a call or two
// more than RateBudget; ZEGO then answers 660300005 and pkg/zim retries the
// call with backoff: it is slower, never dropped.
//
// # When the table fails
//
// Each store call has its own 300 ms timeout; a call that fails (throttled,
// 5xx, unreachable) or takes longer opens a breaker: the instance does not ask
// the table for 1 s, then one call probes it (2 s between failed probes).
// Meanwhile an urgent call takes the floor's next token (waiting up to 1.03 s)
// or, without a floor, fails at once with ErrUnavailable (pkg/zim reports
// ErrThrottled: HTTP 429 with Retry-After); a background call uses the floor
// when the instance has one, else waits for the table until its context's
// deadline. The instance logs a warning when the table starts failing and one
// line when it answers again, and TableErrors counts the failed calls. Waits
// hands over how long each call waited for its slot, for a metric.
//
// # Costs
//
// Every write, successful or not, is one DynamoDB write request. A lone job
// books two slots per write; competing instances add writes whose condition
// failed. docs/performance.md ("Shared rate budget") has the counts per 1,000 deletions and their price.
package budget
