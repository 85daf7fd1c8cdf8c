package handler

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestJob10000 is the benchmark row of issue 10: one user's 10,000
// conversations through the SQS trigger at ZEGO_RATE_LIMIT 20, a 10 s
// function timeout and 30 ms per ZEGO call, the job continuing round after
// round through an in-memory queue (the record fed back as the next event,
// after the poller's pick-up gap). It runs on virtual time (testing/synctest),
// so the numbers are exact and it takes a few seconds. It logs the wall time
// against the ideal 10,000 / 20 = 500 s and asserts only what is not timing:
// everything deleted, ZEGO's one-second window never exceeded.
func TestJob10000(t *testing.T) {
	t.Parallel()
	for _, gap := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("gap %v", gap), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { measureJob(t, 10_000, 20, 10*time.Second, 30*time.Millisecond, gap) })
		})
	}
}

func measureJob(t *testing.T, n int, rate float64, timeout, latency, gap time.Duration) {
	q := &memQueue{}
	hs := newHarness(t, inProcess(), withLatency(latency), withRate(rate), withQueue(q, jobQueue),
		withServer(zimtest.WithRateLimit(20, time.Second)))
	seedMany(hs, n)

	start := time.Now()
	rec := sqsRecord{id: "m-1", body: allBody}
	rounds, failedRecords := 0, 0
	for {
		rounds++
		out, err := hs.invoke(sqsEvent(t, rec), timeout)
		failedRecords += len(decodeSQS(t, out, err))
		sent := q.take()
		if len(sent) == 0 {
			break
		}
		time.Sleep(gap)
		rec = sqsRecord{id: fmt.Sprintf("m-%d", rounds+1), body: sent[0].Body}
	}
	wall := time.Since(start)

	var first, last time.Time
	deletes, gone, lists, throttled := 0, 0, 0, 0
	reqs := hs.srv.Requests()
	var times []time.Time
	for _, r := range reqs {
		switch r.Action {
		case "DeleteConv":
			deletes++
			if first.IsZero() {
				first = r.Time
			}
			last = r.Time
			if r.Code == 660800002 {
				gone++
			}
		case "QueryConversationList":
			lists++
		}
		if r.Code == 660300005 {
			throttled++
		}
		times = append(times, r.Time)
	}
	peak := 0
	for i, j := 0, 0; i < len(times); i++ {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	left := len(hs.srv.Conversations(testAppID, "erin"))
	ideal := time.Duration(float64(n) / rate * float64(time.Second))
	span := last.Sub(first)
	t.Logf("%d conversations, rate %g/s, timeout %v, latency %v, gap %v between rounds", n, rate, timeout, latency, gap)
	t.Logf("wall %v (virtual) vs ideal %v: %.1f%%; first to last deletion %v: %.2f/s = %.1f%% of the rate",
		wall.Round(time.Millisecond), ideal, 100*ideal.Seconds()/wall.Seconds(), span.Round(time.Millisecond),
		float64(deletes-1)/span.Seconds(), 100*float64(deletes-1)/span.Seconds()/rate)
	t.Logf("%d rounds, %d DeleteConv calls (%d already gone), %d listings, peak %d calls in 1 s, %d throttled, %d records failed",
		rounds, deletes, gone, lists, peak, throttled, failedRecords)

	if left != 0 || deletes != n || failedRecords != 0 {
		t.Fatalf("%d left after %d rounds, %d DeleteConv calls, %d records failed", left, rounds, deletes, failedRecords)
	}
	if peak > 20 || throttled != 0 {
		t.Errorf("peak %d calls in one second, %d throttled: ZEGO's window exceeded", peak, throttled)
	}
}
