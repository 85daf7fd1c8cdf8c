package outcome

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// TestFlushSplitsLatencies: a job's hundreds of latencies go out in lines of
// at most 100 values (CloudWatch drops a line with more), the count once.
func TestFlushSplitsLatencies(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	m := NewMetrics(&buf)
	var c Counts
	for range 250 {
		c.Add(Deleted, &zim.Response{Attempts: 1, Latency: 30 * time.Millisecond})
	}
	c.Add(Throttled, nil)
	m.Flush(&c)

	type line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Metrics []struct{ Name string }
			}
		} `json:"_aws"`
		Outcome     string
		Requests    *int
		ZegoLatency []float64
	}
	var lines []line
	for _, raw := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 for deleted and 1 for throttled:\n%s", len(lines), buf.String())
	}
	requests, values := 0, 0
	for _, l := range lines[:3] {
		if l.Outcome != "deleted" || len(l.ZegoLatency) > maxEMFValues {
			t.Fatalf("line %+v", l)
		}
		values += len(l.ZegoLatency)
		var names []string
		for _, mt := range l.AWS.CloudWatchMetrics[0].Metrics {
			names = append(names, mt.Name)
		}
		// Each line declares only the metrics it carries.
		want := "ZegoLatency"
		if l.Requests != nil {
			requests += *l.Requests
			want = "Requests ZegoLatency"
		}
		if strings.Join(names, " ") != want {
			t.Errorf("line declares %v, carries Requests=%v", names, l.Requests)
		}
	}
	if requests != 250 || values != 250 {
		t.Errorf("deleted: Requests %d, %d latencies; want 250 and 250", requests, values)
	}
	if l := lines[3]; l.Outcome != "throttled" || l.Requests == nil || *l.Requests != 1 || len(l.ZegoLatency) != 0 {
		t.Errorf("throttled line %+v", l)
	}
}

// parseEMF checks raw as CloudWatch reads an Embedded Metric Format line
// (every dimension and metric a directive names has its value at the root,
// a dimension's a non-empty string, a metric's a number or array of numbers)
// and returns its dimension sets and root values.
func parseEMF(t *testing.T, raw string) (dims [][]string, root map[string]any) {
	t.Helper()
	var l struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		t.Fatalf("EMF line %s: %v", raw, err)
	}
	if err := json.Unmarshal([]byte(raw), &root); err != nil {
		t.Fatal(err)
	}
	if l.AWS.Timestamp == 0 || len(l.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("EMF line %s: want a timestamp and one directive", raw)
	}
	d := l.AWS.CloudWatchMetrics[0]
	if d.Namespace != MetricsNamespace || len(d.Metrics) == 0 {
		t.Errorf("EMF line %s: namespace %q, %d metrics", raw, d.Namespace, len(d.Metrics))
	}
	for _, set := range d.Dimensions {
		for _, k := range set {
			if v, ok := root[k].(string); !ok || v == "" {
				t.Errorf("EMF line %s: dimension %s has no value", raw, k)
			}
		}
	}
	for _, mt := range d.Metrics {
		switch v := root[mt.Name].(type) {
		case float64:
		case []any:
			for _, x := range v {
				if _, ok := x.(float64); !ok {
					t.Errorf("EMF line %s: metric %s holds %v", raw, mt.Name, x)
				}
			}
		default:
			t.Errorf("EMF line %s: metric %s has no value", raw, mt.Name)
		}
	}
	return d.Dimensions, root
}

// TestMetricsFunctionNameDimension: with the function's name, every line is
// dimensioned by it (outcomes by [FunctionName, Outcome]), so two functions or
// two stacks in one account are separate series; without it the lines are
// still valid EMF.
func TestMetricsFunctionNameDimension(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		opts                   []MetricsOption
		wantOutcome, wantStale string
	}{
		{"named", []MetricsOption{WithFunctionName("prod-ApiFunction-1A2B")}, "[[FunctionName Outcome]]", "[[FunctionName]]"},
		{"unnamed", nil, "[[Outcome]]", "[[]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			m := NewMetrics(&buf, tc.opts...)
			var c Counts
			c.Add(Deleted, &zim.Response{Attempts: 1, Latency: 42 * time.Millisecond})
			c.Add(Throttled, nil)
			m.Flush(&c)
			m.FlushStale(2)
			m.FlushBudgetErrors(3)
			m.FlushBudgetWaits([]time.Duration{5 * time.Millisecond})
			m.FlushJobs(4, 1)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 7 {
				t.Fatalf("%d lines, want deleted, throttled, stale, budget errors, budget waits:\n%s", len(lines), buf.String())
			}
			for i, raw := range lines {
				dims, root := parseEMF(t, raw)
				want := tc.wantOutcome
				if i >= 2 {
					want = tc.wantStale
				}
				if got := fmt.Sprint(dims); got != want {
					t.Errorf("line %s: dimensions %s, want %s", raw, got, want)
				}
				if fn, _ := root["FunctionName"].(string); len(tc.opts) > 0 && fn != "prod-ApiFunction-1A2B" {
					t.Errorf("line %s: FunctionName %q", raw, fn)
				}
			}
			if _, root := parseEMF(t, lines[0]); root["Outcome"] != "deleted" || root["Requests"] != 1.0 || fmt.Sprint(root["ZegoLatency"]) != "[42]" {
				t.Errorf("deleted line %s", lines[0])
			}
			if _, root := parseEMF(t, lines[2]); root[StaleSecretMetric] != 2.0 {
				t.Errorf("stale line %s", lines[2])
			}
			if _, root := parseEMF(t, lines[3]); root[BudgetTableErrorsMetric] != 3.0 {
				t.Errorf("budget errors line %s", lines[3])
			}
			if _, root := parseEMF(t, lines[5]); root[JobRoundsMetric] != 4.0 {
				t.Errorf("job rounds line %s", lines[5])
			}
			if _, root := parseEMF(t, lines[6]); root[JobsCompletedMetric] != 1.0 {
				t.Errorf("jobs completed line %s", lines[6])
			}
		})
	}
}
