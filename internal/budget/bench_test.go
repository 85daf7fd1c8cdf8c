package budget

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// BenchmarkWait is the cost of one Wait on its own, against the in-memory
// store with no latency: slots 1µs apart, so the benchmark measures the
// bookkeeping (one store write per two background calls, one per urgent
// call), not waiting.
func BenchmarkWait(b *testing.B) {
	for _, p := range []Priority{Background, Urgent} {
		b.Run(p.String(), func(b *testing.B) {
			bud := newBudget(&memStore{}, time.Microsecond, slog.New(slog.DiscardHandler))
			ctx := WithPriority(context.Background(), p)
			b.ReportAllocs()
			for b.Loop() {
				if err := bud.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWaitMoto is the latency a slot adds to a warm call when the pool
// is idle: an urgent Wait on an instance without a floor (so it books in the
// table) against moto's DynamoDB, one call a spacing apart. It reports the
// median and 95th percentile of the Wait, in milliseconds.
func BenchmarkWaitMoto(b *testing.B) {
	db, table := motoTable(b)
	set := Settings{Rate: 20, FloorTotal: 2}
	bud := newTestBudget(b, NewDynamoStore(db, table), set, nil)
	bud.timeout = 10 * time.Second // measure moto, not the breaker
	ctx := WithPriority(context.Background(), Urgent)
	if err := bud.Wait(ctx); err != nil { // warm the connection
		b.Fatal(err)
	}
	var waits []time.Duration
	for b.Loop() {
		b.StopTimer()
		time.Sleep(set.Spacing() + time.Millisecond) // the pool idle again
		b.StartTimer()
		start := time.Now()
		if err := bud.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		waits = append(waits, time.Since(start))
	}
	slices.Sort(waits)
	ms := func(q float64) float64 {
		return float64(waits[min(len(waits)-1, int(q*float64(len(waits))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.95), "p95-ms")
}

// BenchmarkDynamoUpdateItem is one conditional write against moto's
// DynamoDB, for comparison with BenchmarkWaitMoto: median and 95th
// percentile in milliseconds.
func BenchmarkDynamoUpdateItem(b *testing.B) {
	db, table := motoTable(b)
	s := NewDynamoStore(db, table)
	ctx := context.Background()
	var waits []time.Duration
	for b.Loop() {
		now := time.Now().UnixMicro()
		start := time.Now()
		if _, _, err := s.Start(ctx, now, now+1); err != nil {
			b.Fatal(err)
		}
		waits = append(waits, time.Since(start))
	}
	slices.Sort(waits)
	ms := func(q float64) float64 {
		return float64(waits[min(len(waits)-1, int(q*float64(len(waits))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.95), "p95-ms")
}
