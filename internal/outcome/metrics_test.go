package outcome

import (
	"bytes"
	"encoding/json"
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
