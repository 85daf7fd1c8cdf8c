package main

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

func TestMedianAndPercentile(t *testing.T) {
	t.Parallel()
	ten := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	tests := []struct {
		name string
		xs   []float64
		p    float64
		med  float64
		pct  float64
	}{
		{"one value", []float64{4}, 90, 4, 4},
		{"odd count", []float64{5, 1, 3}, 50, 3, 3},
		{"even count: mean of the middle two", []float64{4, 1, 3, 2}, 50, 2.5, 2},
		{"p90 of ten is the 9th smallest", ten, 90, 5.5, 9},
		{"p50 of ten is the 5th smallest", ten, 50, 5.5, 5},
		{"p100 is the largest", ten, 100, 5.5, 10},
		{"p10 of ten is the smallest", ten, 10, 5.5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.xs)
			if got := median(tt.xs); got != tt.med {
				t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.med)
			}
			if got := percentile(tt.xs, tt.p); got != tt.pct {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.pct)
			}
			if !slices.Equal(in, tt.xs) {
				t.Errorf("the input was reordered: %v, was %v", tt.xs, in)
			}
		})
	}
	for _, p := range []float64{0, -1, 101} {
		if got := percentile(ten, p); !math.IsNaN(got) {
			t.Errorf("percentile(_, %v) = %v, want NaN", p, got)
		}
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(percentile(nil, 90)) {
		t.Error("no values must give NaN, not a number that looks measured")
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	got := table([]row{
		{Metric: "cold start", Ours: "9.0 ms", Reference: "4.0 ms", Target: "≤ 2× hello-world", Met: "no"},
		{Metric: "a | b", Ours: "1"},
	})
	want := "| metric | ours | hello-world / reference | target | met? |\n" +
		"|---|---|---|---|---|\n" +
		"| cold start | 9.0 ms | 4.0 ms | ≤ 2× hello-world | no |\n" +
		"| a \\| b | 1 | — | — | — |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormats(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
	}{
		{ms(3.14159), "3.14 ms"},
		{ms(42.25), "42.2 ms"},
		{ms(312.6), "313 ms"},
		{ms(math.NaN()), "n/a"},
		{megabytes(9_240_000), "9.24 MB"},
		{megabytes(40_000_000), "40.00 MB"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestCPUModel(t *testing.T) {
	t.Parallel()
	info := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel(info); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel("processor\t: 0\nBogoMIPS\t: 50.00\n"); got != "unknown" {
		t.Errorf("cpuModel without a model name = %q, want unknown", got)
	}
}

func TestVMHWM(t *testing.T) {
	t.Parallel()
	got, err := vmHWM("Name:\tbootstrap\nVmPeak:\t 1264144 kB\nVmHWM:\t   12000 kB\nVmRSS:\t   11000 kB\n")
	if err != nil || got != 12000*1024 {
		t.Errorf("vmHWM = %d, %v; want %d", got, err, 12000*1024)
	}
	for _, bad := range []string{"Name:\tbootstrap\n", "VmHWM:\t  twelve kB\n", "VmHWM:\t 12 MB\n"} {
		if _, err := vmHWM(bad); err == nil {
			t.Errorf("vmHWM(%q) gave no error", bad)
		}
	}
}

// spanFor is how long n intervals take at rate per second.
func spanFor(n int, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second))
}

// measured is a run that meets every target by a small margin.
func measured() results {
	return results{
		coldOurs: []float64{8, 8}, coldHello: []float64{4, 4}, coldCall: []float64{3},
		warmOurs: []float64{2}, warmHello: []float64{1}, warmCall: []float64{0.5}, warmOverhead: []float64{1.5},
		load: load{messages: 200, batches: 20, invocations: 20, deliveries: 1, requests: 200, accepted: 200,
			span: spanFor(199, 19.0), wall: 10 * time.Second},
		rssOurs: 40e6, rssHello: 6e6, helloInvocations: 31, sizeOurs: 10e6, sizeHello: 5.8e6,
	}
}

func TestRowsCheckTheTargets(t *testing.T) {
	t.Parallel()
	metOf := func(r results) map[string]string {
		out := map[string]string{}
		for _, row := range rows(r) {
			if row.Met != "" {
				out[strings.SplitN(row.Metric, ":", 2)[0]] = row.Met
			}
		}
		return out
	}
	all := metOf(measured())
	if len(all) != 6 {
		t.Fatalf("rows with a target: %v, want 6", all)
	}
	for k, v := range all {
		if v != "yes" {
			t.Errorf("%s: met = %s at the limit, want yes", k, v)
		}
	}

	tests := []struct {
		name   string
		change func(*results)
		metric string
	}{
		{"cold start over 2×", func(r *results) { r.coldOurs = []float64{8.1, 8.1} }, "cold start"},
		{"throughput under 95%", func(r *results) { r.load.span = spanFor(199, 18.9) }, "sustained DeleteConv throughput"},
		{"one throttled answer", func(r *results) { r.load.throttled = 1 }, "throttled answers (660300005) in that run"},
		{"one message lost", func(r *results) { r.load.lost = 1 }, "messages lost / still failing after redelivery, in that run"},
		{"RSS over 40 MB", func(r *results) { r.rssOurs = 40e6 + 1 }, "peak RSS of the bootstrap (VmHWM) over the 200 messages"},
		{"binary over 10 MB", func(r *results) { r.sizeOurs = 10e6 + 1 }, "linux/arm64 bootstrap size (CGO_ENABLED=0, -tags lambda.norpc -trimpath -ldflags='-s -w')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := measured()
			tt.change(&r)
			got := metOf(r)
			for k, v := range got {
				want := "yes"
				if k == tt.metric {
					want = "no"
				}
				if v != want {
					t.Errorf("%s: met = %s, want %s", k, v, want)
				}
			}
			if _, ok := got[tt.metric]; !ok {
				t.Errorf("no row %q in %v", tt.metric, got)
			}
		})
	}
}

func TestReportNamesWhereAndHow(t *testing.T) {
	t.Parallel()
	r := measured()
	r.env = environment{cpu: "Test CPU", cores: 2, date: time.Date(2026, 11, 27, 14, 3, 0, 0, time.UTC), goVer: "go1.26.8 linux/amd64", commit: "0123456789ab"}
	out := report(r, options{cold: 10, warm: 30, messages: 200, loopback: true})
	for _, want := range []string{
		"Test CPU, 2 cores", "2026-11-27 14:03 UTC", "go1.26.8 linux/amd64", "commit 0123456789ab",
		"`go run ./cmd/perfbench -profile loopback -cold 10 -warm 30 -messages 200 ",
		"| cold start: first invocation, median of 2 (process start → answer, secret fetch included) | 8.00 ms (2.00× hello-world) | 4.00 ms | ≤ 2× hello-world | yes |",
		"19.00 requests/s = 95.0% of 20/s", "limiter ceiling 19.40/s (97% spacing)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o, err := parseOptions(nil, io.Discard, "/repo")
	want := options{cold: 10, warm: 30, messages: 200, out: "/repo/build/perfbench/results.md",
		loopback: true, latency: true, before: beforeWarmUp, provisioned: 5, pause: 3 * time.Second, batches: 3, servers: "h1tls,h1plain"}
	if err != nil || o != want {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	if o, err := parseOptions([]string{"-profile", "latency", "-before", ""}, io.Discard, "/repo"); err != nil || o.loopback || !o.latency || o.before != "" {
		t.Errorf("-profile latency -before '': %+v, %v", o, err)
	}
	if got := o.args(); got != `-profile both -cold 10 -warm 30 -messages 200 -provisioned 5 -pause 3s -batches 3 -before "d23d76a" -servers "h1tls,h1plain"` {
		t.Errorf("args() = %s", got)
	}
	for _, args := range [][]string{{"-cold", "0"}, {"-messages", "-1"}, {"extra"}, {"-nope"}, {"-profile", "wan"}, {"-batches", "0"}, {"-pause", "-1s"}} {
		if _, err := parseOptions(args, io.Discard, "/repo"); err == nil {
			t.Errorf("parseOptions(%q) gave no error", args)
		}
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	var ev events.SQSEvent
	if err := json.Unmarshal(sqsEvent([][2]string{{"m-1", `{"a":1}`}, {"m-2", `{"b":2}`}}), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 2 || ev.Records[1].MessageId != "m-2" || ev.Records[1].Body != `{"b":2}` || ev.Records[0].EventSource != "aws:sqs" {
		t.Errorf("SQS event %+v", ev)
	}

	ids, err := batchFailures(devstack.InvokeResult{Body: []byte(`{"batchItemFailures":[{"itemIdentifier":"m-2"}]}`)})
	if err != nil || !slices.Equal(ids, []string{"m-2"}) {
		t.Errorf("batchFailures = %v, %v", ids, err)
	}
	for _, body := range []string{`{}`, `{"errorType":"Throttled"}`, `not json`} {
		if _, err := batchFailures(devstack.InvokeResult{Body: []byte(body)}); err == nil {
			t.Errorf("batchFailures(%s) gave no error", body)
		}
	}

	event := []byte(`{"FromUserId": "u", "ConvId": "c", "ConvType": 0}`)
	if err := echoed(devstack.InvokeResult{Body: []byte(`{"FromUserId":"u","ConvId":"c","ConvType":0}`)}, event); err != nil {
		t.Error(err)
	}
	if err := echoed(devstack.InvokeResult{Body: []byte(`{"FromUserId":"v"}`)}, event); err == nil {
		t.Error("echoed accepted another answer")
	}

	if _, err := deleted(devstack.InvokeResult{Body: []byte(`{"Code":0,"Outcome":"deleted"}`),
		Logs: []devstack.LogRecord{{"msg": "request outcome", "latencyMs": 1.5}}}); err != nil {
		t.Error(err)
	}
	if _, err := deleted(devstack.InvokeResult{Body: []byte(`{"Code":660800002,"Outcome":"already_deleted"}`)}); err == nil {
		t.Error("deleted accepted an already-deleted answer")
	}
}

func TestGrid(t *testing.T) {
	t.Parallel()
	got := grid([]string{"metric", "a", "b"}, [][]string{{"x | y", "1", ""}})
	want := "| metric | a | b |\n|---|---|---|\n| x \\| y | 1 | — |\n"
	if got != want {
		t.Errorf("grid:\n%s\nwant:\n%s", got, want)
	}
}

func TestFirstBudget(t *testing.T) {
	t.Parallel()
	// (4 + max(32, 200) + 100) × 1.15 = 349.6
	got, arithmetic := firstBudget(netem.DefaultProfile(), 4, true)
	if math.Abs(got-349.6) > 1e-9 {
		t.Errorf("firstBudget = %v, want 349.6", got)
	}
	if arithmetic != "≤ (4.00 ms + max(32.0 ms, 200 ms) + 100 ms) × 1.15 = 350 ms" {
		t.Errorf("arithmetic = %q", arithmetic)
	}
	// A slow secret path takes over from the connection set-up.
	slow := netem.DefaultProfile()
	slow.SecretsManager.RoundTrip = 300 * time.Millisecond
	// Over plain HTTP the set-up is TCP alone: (4 + max(32, 100) + 100) × 1.15 = 234.6
	if got, _ := firstBudget(netem.DefaultProfile(), 4, false); math.Abs(got-234.6) > 1e-9 {
		t.Errorf("firstBudget over plain HTTP = %v, want 234.6", got)
	}
	if got, _ := firstBudget(slow, 4, true); math.Abs(got-(4+302+100)*1.15) > 1e-9 {
		t.Errorf("firstBudget with a 300 ms secret = %v", got)
	}
	if got, _ := heldBudget(netem.DefaultProfile(), 1); math.Abs(got-101*1.15) > 1e-9 {
		t.Errorf("heldBudget = %v, want 116.15", got)
	}
}

// latencyMeasured is a latency-profile run just within its targets.
func latencyMeasured() *latencyResults {
	l := &latencyResults{profile: netem.DefaultProfile(), before: "d23d76a", pause: 3 * time.Second}
	l.first[helloWorld] = []float64{4}
	l.first[before] = []float64{360}
	l.first[after] = []float64{349.5}
	l.prov[helloWorld] = []float64{1}
	l.prov[after] = []float64{116.1}
	l.batch[after][http2] = []batchSample{{conns: 1}, {conns: 2}}
	l.batch[after][http1] = []batchSample{{conns: 7}}
	l.servers = []serverResults{{server: serverHTTP1Plain}}
	l.servers[0].first[after] = []float64{234.5}
	l.servers[0].firstCall[after] = []float64{101}
	l.servers[0].conns[after] = []int{1}
	return l
}

func TestLatencyRowsCheckTheTargets(t *testing.T) {
	t.Parallel()
	metOf := func(l *latencyResults) map[string]string {
		out := map[string]string{}
		for _, r := range latencyRows(l) {
			if r[5] != "" {
				out[strings.SplitN(r[0], ",", 2)[0]] = r[5]
			}
		}
		return out
	}
	all := metOf(latencyMeasured())
	if len(all) != 3 {
		t.Fatalf("rows with a target: %v, want 3", all)
	}
	for k, v := range all {
		if v != "yes" {
			t.Errorf("%s: met = %s at the limit, want yes", k, v)
		}
	}
	for _, tt := range []struct {
		name   string
		change func(*latencyResults)
		metric string
	}{
		{"first invocation over budget", func(l *latencyResults) { l.first[after] = []float64{349.7} }, "first invocation"},
		{"held invocation over budget", func(l *latencyResults) { l.prov[after] = []float64{116.2} }, "provisioned-like: init"},
		{"three connections over HTTP/2", func(l *latencyResults) { l.batch[after][http2][1].conns = 3 }, "cold SQS batch of 10"},
		{"no batch measured", func(l *latencyResults) { l.batch[after][http2] = nil }, "cold SQS batch of 10"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := latencyMeasured()
			tt.change(l)
			for k, v := range metOf(l) {
				want := "yes"
				if k == tt.metric {
					want = "no"
				}
				if v != want {
					t.Errorf("%s: met = %s, want %s", k, v, want)
				}
			}
		})
	}
	out := latencyReport(latencyMeasured())
	for _, want := range []string{"| before the warm-up (d23d76a) |", "1, 2 (batch:", http1Env,
		"| plain HTTP/1.1 | — | 234 ms (first call 101 ms; connections 1) | ≤ (4.00 ms + max(32.0 ms, 100 ms) + 100 ms) × 1.15 = 235 ms | yes |"} {
		if !strings.Contains(out, want) {
			t.Errorf("latency report lacks %q:\n%s", want, out)
		}
	}
}
