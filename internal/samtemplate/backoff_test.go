package samtemplate

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// outage is how long a dependency (ZEGO, Secrets Manager, the secret) may fail, with the defaults, without moving
// a record to the dead-letter queue (issue 19).
const outage = 6 * time.Hour

// backoffCeiling is the longest BackoffBase and BackoffMax accept. SQS allows a message 12 hours of visibility
// counted from its receive, and the function sets the timeout during the invocation, up to the QueueFunction's
// timeout later.
const backoffCeiling = 11 * time.Hour

// TestBackoffOutlastsAnOutage checks the defaults' arithmetic (README "Outages and the dead-letter queue"): a failing record is
// hidden for min(BackoffMax, BackoffBase × 2^(n−1)) after its n-th receive, so the MaxReceiveCount-th receive
// comes after a 6-hour outage has ended, the record moves to the dead-letter queue only well within the queue's
// retention, and the dead-letter queue then keeps it for a week or more.
func TestBackoffOutlastsAnOutage(t *testing.T) {
	t.Parallel()
	s := deployed(t)[0]
	base, errBase := time.ParseDuration(s.Params["BackoffBase"])
	ceiling, errMax := time.ParseDuration(s.Params["BackoffMax"])
	n := int(number(s.Params["MaxReceiveCount"]))
	if err := errors.Join(errBase, errMax); err != nil || n < 1 {
		t.Fatalf("defaults BackoffBase %q, BackoffMax %q, MaxReceiveCount %q: %v", s.Params["BackoffBase"],
			s.Params["BackoffMax"], s.Params["MaxReceiveCount"], err)
	}
	visibility := func(k int) time.Duration {
		d := base
		for i := 1; i < k && d < ceiling; i++ {
			d *= 2
		}
		return min(d, ceiling)
	}
	// receive[k] is the k-th receive's time after the first, taking no time to process (real receives come later).
	receive := make([]time.Duration, n+1)
	var at time.Duration
	for k := 1; k <= n; k++ {
		receive[k] = at
		at += visibility(k)
	}
	moved := at
	during := 0
	for k := 1; k <= n; k++ {
		if receive[k] < outage {
			during++
		}
	}
	if receive[n] < outage {
		t.Errorf("BackoffBase %v, BackoffMax %v, MaxReceiveCount %d: the last receive comes %v after the first, within a %v "+
			"outage: the record would reach the dead-letter queue", base, ceiling, n, receive[n], outage)
	}

	// The figures template.yaml and the README state.
	documented := []struct {
		what      string
		got, want any
	}{
		{"defaults", [3]any{s.Params["BackoffBase"], s.Params["BackoffMax"], n}, [3]any{"60s", "1h", 20}},
		{"first 6 receives' timeouts", receive[7], 3780 * time.Second},
		{"receives during the outage", during, 11},
		{"first receive after the outage", receive[during+1], 21780 * time.Second},
		{"last receive", receive[n], 50580 * time.Second},
		{"move to the dead-letter queue", moved, 54180 * time.Second},
	}
	for _, d := range documented {
		if d.got != d.want {
			t.Errorf("%s: %v, documented as %v: change the template's comments and the README with it", d.what, d.got, d.want)
		}
	}

	_, queue := functions(t, s)
	timeout := time.Duration(number(queue.Properties["Timeout"])) * time.Second
	if backoffCeiling+timeout > 12*time.Hour {
		t.Errorf("the highest BackoffMax %v set %v after a receive passes SQS's 12 hours", backoffCeiling, timeout)
	}
	q := s.Resources[consumedQueue(t, s)].Properties
	retention := time.Duration(number(q["MessageRetentionPeriod"])) * time.Second
	dlqRetention := time.Duration(number(s.Resources[deadLetterQueue(t, s)].Properties["MessageRetentionPeriod"])) * time.Second
	if !(moved < retention) {
		t.Errorf("a failing record moves %v after its first receive, past the queue's retention %v: it would expire instead", moved, retention)
	}
	// A moved message keeps its enqueue time: the dead-letter queue keeps it for what is left of its retention.
	if left := dlqRetention - moved; left < 7*24*time.Hour {
		t.Errorf("a record moved %v after its first receive is kept %v in the dead-letter queue: want a week or more", moved, left)
	}
	t.Logf("%d receives span %v (last at %v); %d fall within a %v outage; moved after %v", n, moved, receive[n], during, outage, moved)
}

// TestDurationPatterns checks the duration parameters' AllowedPattern against what the function accepts: every
// value CloudFormation lets through is a Go duration the function takes (SecretTtl: positive; BackoffBase and
// BackoffMax: 1 s to backoffCeiling, in whole seconds, as SQS counts visibility), and the common spellings pass.
func TestDurationPatterns(t *testing.T) {
	t.Parallel()
	defs := asMap(translated(t).source["Parameters"])
	accepts := func(name, v string) bool {
		t.Helper()
		_, err := parameterValues(map[string]any{name: defs[name]}, map[string]string{name: v})
		var refused *refusedError
		if err != nil && !errors.As(err, &refused) {
			t.Fatalf("parameter %s: %v", name, err)
		}
		return err == nil
	}

	// Candidates: numbers and units alone and joined at random, around every boundary the patterns draw.
	nums := []string{"0", "00", "1", "5", "9", "10", "11", "12", "13", "59", "60", "61", "99", "100", "600", "659",
		"660", "661", "720", "721", "3600", "39600", "39601", "43200", "99999", "999999", "1000000", "9999999",
		"0.5", "1.5", "0.0", "1.", ".5", "05", "-1", "+1"}
	units := []string{"ns", "us", "µs", "ms", "s", "m", "h", "", "d", " "}
	var singles []string
	for _, n := range nums {
		for _, u := range units {
			singles = append(singles, n+u)
		}
	}
	candidates := append([]string{"", " 5m", "5m ", "1e3s", "1h-1m", "h", "m5", "1h0m0s", "0h0m0s"}, singles...)
	r := rand.New(rand.NewPCG(19, 17))
	for range 3000 {
		v := ""
		for range 2 + r.IntN(2) {
			v += singles[r.IntN(len(singles))]
		}
		candidates = append(candidates, v)
	}

	type rule struct {
		param  string
		valid  func(time.Duration) bool
		accept []string // common spellings that must pass
		refuse []string
	}
	positive := func(d time.Duration) bool { return d > 0 }
	backoff := func(d time.Duration) bool { return d >= time.Second && d <= backoffCeiling && d%time.Second == 0 }
	backoffAccept := []string{"1s", "60s", "90s", "1m", "5m", "90m", "1h", "1h30m", "2h0m0s", "10h59m59s", "11h", "660m", "39600s"}
	backoffRefuse := []string{"0s", "0m", "0h", "0", "500ms", "1.5h", "11h1s", "11h0m1s", "12h", "661m", "39601s", "43200s", "-1m"}
	for _, c := range []rule{
		{"SecretTtl", positive, []string{"1ns", "30s", "5m", "90s", "1h", "1h30m", "1.5h", "300ms", "2h45m30s", "24h", "0.5s1ns"},
			[]string{"0s", "0m", "0", "0h0m0s", "0.5ns", "-5m", "5 minutes", "9999999h", "1d"}},
		{"BackoffBase", backoff, backoffAccept, backoffRefuse},
		{"BackoffMax", backoff, backoffAccept, backoffRefuse},
	} {
		accepted := 0
		for _, v := range candidates {
			if !accepts(c.param, v) {
				continue
			}
			accepted++
			if d, err := time.ParseDuration(v); err != nil || !c.valid(d) {
				t.Errorf("%s accepts %q, which the function refuses (%v, %v)", c.param, v, d, err)
			}
		}
		for _, v := range c.accept {
			if !accepts(c.param, v) {
				t.Errorf("%s refuses %q", c.param, v)
			}
		}
		for _, v := range c.refuse {
			if accepts(c.param, v) {
				t.Errorf("%s accepts %q", c.param, v)
			}
		}
		if accepted == 0 {
			t.Errorf("%s accepts none of %d candidates: the check proves nothing", c.param, len(candidates))
		}
	}
}
