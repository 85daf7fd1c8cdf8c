package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

// median is the middle of xs (the mean of the two middle values when there
// is an even number of them); NaN when xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank p-th percentile of xs (0 < p ≤ 100): the
// smallest value that at least p% of xs are at or below. With 10 values,
// p90 is the 9th smallest. NaN when xs is empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// row is one line of the results table.
type row struct {
	Metric    string
	Ours      string
	Reference string
	Target    string
	Met       string // "yes", "no", or "" when the row has no target
}

// met spells a target check for the table.
func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// table formats rows as a markdown table. A pipe inside a cell is escaped.
func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| metric | ours | hello-world / reference | target | met? |\n")
	b.WriteString("|---|---|---|---|---|\n")
	cell := func(s string) string {
		if s == "" {
			return "—"
		}
		return strings.ReplaceAll(s, "|", `\|`)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(r.Metric), cell(r.Ours), cell(r.Reference), cell(r.Target), cell(r.Met))
	}
	return b.String()
}

// ms formats milliseconds with a precision that suits their size.
func ms(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

// megabytes formats a byte count in MB (10^6 bytes), the unit of the targets.
func megabytes(n int64) string {
	return fmt.Sprintf("%.2f MB", float64(n)/1e6)
}

// cpuModel returns the first "model name" of /proc/cpuinfo's text, or
// "unknown" when there is none (some architectures do not name it).
func cpuModel(cpuinfo string) string {
	for line := range strings.Lines(cpuinfo) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return "unknown"
}

// vmHWM returns the peak resident set size, in bytes, from the text of
// /proc/PID/status (its "VmHWM:   12345 kB" line).
func vmHWM(status string) (int64, error) {
	for line := range strings.Lines(status) {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		var kb int64
		var unit string
		if _, err := fmt.Sscan(v, &kb, &unit); err != nil || unit != "kB" {
			return 0, fmt.Errorf("malformed VmHWM line %q", strings.TrimSpace(line))
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmHWM line")
}

// The targets the table checks (issue: performance measurement).
const (
	configuredRate = 20   // requests per second: ZEGO_RATE_LIMIT's default, ZEGO's per-AppId limit
	limiterSpacing = 0.97 // pkg/zim spaces requests at 97% of the configured rate
	maxColdRatio   = 2    // cold start at most twice hello-world's
	minRateShare   = 0.95 // sustained throughput at least 95% of the configured rate
	maxRSS         = 40e6 // bytes
	maxARM64Size   = 10e6 // bytes
)

// rows turns the measurements into the table's rows.
func rows(r results) []row {
	coldOurs, coldHello := median(r.coldOurs), median(r.coldHello)
	ratio := coldOurs / coldHello
	l := r.load
	share := l.rate() / configuredRate
	return []row{
		{
			Metric:    fmt.Sprintf("cold start: first invocation, median of %d (process start → answer, secret fetch included)", len(r.coldOurs)),
			Ours:      fmt.Sprintf("%s (%.2f× hello-world)", ms(coldOurs), ratio),
			Reference: ms(coldHello),
			Target:    "≤ 2× hello-world",
			Met:       met(ratio <= maxColdRatio),
		},
		{
			Metric:    fmt.Sprintf("cold start: p90 of %d", len(r.coldOurs)),
			Ours:      ms(percentile(r.coldOurs, 90)),
			Reference: ms(percentile(r.coldHello, 90)),
		},
		{
			Metric:    "cold start: of which the first DeleteConv call (function's latencyMs; the init warm-up has fetched the secret and opened the connection), median",
			Ours:      ms(median(r.coldCall)),
			Reference: "a warm call: " + ms(median(r.warmCall)),
		},
		{
			Metric:    fmt.Sprintf("warm direct invocation, median of %d (%d ms apart)", len(r.warmOurs), warmSpacing.Milliseconds()),
			Ours:      ms(median(r.warmOurs)),
			Reference: ms(median(r.warmHello)),
		},
		{
			Metric:    "warm per-message overhead: invocation minus the ZEGO call (function's latencyMs), median",
			Ours:      ms(median(r.warmOverhead)),
			Reference: ms(median(r.warmHello)) + " (its whole invocation)",
		},
		{
			Metric: fmt.Sprintf("sustained DeleteConv throughput: %d SQS messages in batches of 10, default rate (ZIM server log, first → last accepted)", l.messages),
			Ours:   fmt.Sprintf("%.2f requests/s = %.1f%% of %d/s", l.rate(), share*100, configuredRate),
			Reference: fmt.Sprintf("limiter ceiling %.2f/s (%.0f%% spacing)",
				configuredRate*limiterSpacing, limiterSpacing*100),
			Target: fmt.Sprintf("≥ %.0f%% of %d/s", minRateShare*100, configuredRate),
			Met:    met(share >= minRateShare),
		},
		{
			Metric: "throttled answers (660300005) in that run",
			Ours:   fmt.Sprintf("%d of %d requests", l.throttled, l.requests),
			Target: "0",
			Met:    met(l.throttled == 0),
		},
		{
			Metric: "messages lost / still failing after redelivery, in that run",
			Ours: fmt.Sprintf("%d / %d (%d invocations, %d deliveries, %.1f messages/s end to end)",
				l.lost, l.unfinished, l.invocations, l.deliveries, float64(l.messages)/l.wall.Seconds()),
			Target: "0 lost",
			Met:    met(l.lost == 0),
		},
		{
			Metric:    fmt.Sprintf("peak RSS of the bootstrap (VmHWM) over the %d messages", l.messages),
			Ours:      megabytes(r.rssOurs),
			Reference: fmt.Sprintf("%s after %d invocations", megabytes(r.rssHello), r.helloInvocations),
			Target:    "≤ 40 MB",
			Met:       met(r.rssOurs <= maxRSS),
		},
		{
			Metric:    "linux/arm64 bootstrap size (CGO_ENABLED=0, -tags lambda.norpc -trimpath -ldflags='-s -w')",
			Ours:      megabytes(r.sizeOurs),
			Reference: megabytes(r.sizeHello),
			Target:    "≤ 10 MB",
			Met:       met(r.sizeOurs <= maxARM64Size),
		},
	}
}

// report is the whole markdown output: where and how, the table, and what
// each figure means.
func report(r results, o options) string {
	var b strings.Builder
	e := r.env
	fmt.Fprintf(&b, "## cmd/perfbench\n\n")
	fmt.Fprintf(&b, "Machine: %s, %d cores · %s · %s · commit %s  \n", e.cpu, e.cores, e.date.Format("2006-01-02 15:04 UTC"), e.goVer, e.commit)
	fmt.Fprintf(&b, "Command: `make bench` (`go run ./cmd/perfbench %s`)  \n", o.args())
	if e.loadStart != "" {
		fmt.Fprintf(&b, "Load (1-minute average, /proc/loadavg, %d cores): %s at the start, %s at the end\n", e.cores, e.loadStart, e.loadEnd)
	}
	if o.loopback {
		b.WriteString("\n### Loopback\n\n")
		b.WriteString(table(rows(r)))
		b.WriteString(`
- Both bootstraps are built for this machine as for Lambda and run under aws-lambda-rie via internal/local/devstack, with the
  local ZIM server (cmd/zimserver, 20 requests/s per AppId) and moto_server as Secrets Manager.
- Cold start: a fresh emulator per sample, the two bootstraps alternating, one discarded warm-up pair first. The time
  runs from sending the invocation (the emulator then starts the process) to the complete answer. Ours deletes a stored
  conversation, so it loads the AWS SDK configuration, fetches the secret and calls the ZIM server; hello-world echoes.
- Warm overhead: an already started process, invocations spaced so the rate limiter never waits; the function's own
  latencyMs (the DeleteConv call) is subtracted, leaving the emulator, the runtime API and the handler.
- Throughput: one function instance, ZEGO_RATE_LIMIT unset (20/s), batches invoked one at a time; failures delivered
  again as SQS would. Requests/s = (accepted − 1) / (last − first accepted arrival) in the ZIM server's log.
- MB = 10^6 bytes.
`)
	}
	if o.latency && r.lat != nil {
		b.WriteString(latencyReport(r.lat))
	}
	return b.String()
}

// The latency profile's targets (issue 14).
const (
	latencySlack       = 1.15 // the first invocation within 15% of its round-trip budget
	maxHTTP2BatchConns = 2    // connections a cold SQS batch of 10 may open over HTTP/2
)

// grid formats a markdown table with the given header; "" cells read "—".
func grid(header []string, rows [][]string) string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			if c == "" {
				c = "—"
			}
			fmt.Fprintf(&b, " %s |", strings.ReplaceAll(c, "|", `\|`))
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString(strings.Repeat("|---", len(header)) + "|\n")
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

// firstBudget is the first invocation's target with the latency profile:
// hello-world's first invocation, plus the longer of the secret path and
// ZEGO's connection set-up (they overlap; TCP, then TLS 1.3's one round trip
// when tls), plus one ZEGO round trip, plus 15%. It returns the budget and its
// arithmetic.
func firstBudget(p netem.Profile, hello float64, tls bool) (float64, string) {
	secret := msOf(p.SecretsManager.Setup + p.SecretsManager.RoundTrip)
	setup := msOf(p.ZEGO.Setup)
	if tls {
		setup += msOf(p.ZEGO.RoundTrip)
	}
	rt := msOf(p.ZEGO.RoundTrip)
	budget := (hello + max(secret, setup) + rt) * latencySlack
	return budget, fmt.Sprintf("≤ (%s + max(%s, %s) + %s) × %.2f = %s", ms(hello), ms(secret), ms(setup), ms(rt), latencySlack, ms(budget))
}

// heldBudget is the held invocation's target: about one ZEGO round trip, on
// top of what hello-world's held invocation costs, plus 15%.
func heldBudget(p netem.Profile, hello float64) (float64, string) {
	rt := msOf(p.ZEGO.RoundTrip)
	budget := (hello + rt) * latencySlack
	return budget, fmt.Sprintf("≈ one ZEGO round trip: ≤ (%s + %s) × %.2f = %s", ms(hello), ms(rt), latencySlack, ms(budget))
}

// conns lists the connections of each batch, and the batches' median latency.
func conns(bs []batchSample) string {
	if len(bs) == 0 {
		return ""
	}
	var cs []string
	var lat []float64
	for _, b := range bs {
		cs = append(cs, strconv.Itoa(b.conns))
		lat = append(lat, b.latency)
	}
	return fmt.Sprintf("%s (batch: %s)", strings.Join(cs, ", "), ms(median(lat)))
}

// maxConns is the most connections any of bs opened; -1 when bs is empty.
func maxConns(bs []batchSample) int {
	m := -1
	for _, b := range bs {
		m = max(m, b.conns)
	}
	return m
}

// latencyRows are the latency profile's rows: metric, hello-world, before,
// after, target, met.
func latencyRows(l *latencyResults) [][]string {
	med := func(v variant, xs [variants][]float64) string {
		if len(xs[v]) == 0 {
			return ""
		}
		return ms(median(xs[v]))
	}
	p90 := func(v variant, xs [variants][]float64) string {
		if len(xs[v]) == 0 {
			return ""
		}
		return ms(percentile(xs[v], 90))
	}
	hello := median(l.first[helloWorld])
	first := median(l.first[after])
	budget, arithmetic := firstBudget(l.profile, hello, true)
	held := median(l.prov[after])
	hBudget, hArithmetic := heldBudget(l.profile, median(l.prov[helloWorld]))
	h2 := l.batch[after][http2]
	rows := [][]string{
		{fmt.Sprintf("first invocation, median of %d (process start → answer, under the emulator)", len(l.first[after])),
			med(helloWorld, l.first), med(before, l.first), med(after, l.first), arithmetic, met(first <= budget)},
		{"first invocation, p90", p90(helloWorld, l.first), p90(before, l.first), p90(after, l.first), "", ""},
		{"… the first DeleteConv call (function's latencyMs: credentials, connection, request), median", "", med(before, l.firstCall), med(after, l.firstCall), "", ""},
		{fmt.Sprintf("provisioned-like: init, %v pause, then the first invocation, median of %d (perfbench's Runtime API)", l.pause, len(l.prov[after])),
			med(helloWorld, l.prov), med(before, l.prov), med(after, l.prov), hArithmetic, met(held <= hBudget)},
		{"… its init (process start → first request for an event), median", med(helloWorld, l.provInit), med(before, l.provInit), med(after, l.provInit), "", ""},
		{fmt.Sprintf("warm direct invocation, median of %d (%d ms apart)", len(l.warm[after]), warmSpacing.Milliseconds()),
			med(helloWorld, l.warm), "", fmt.Sprintf("%s (the ZEGO call: %s)", med(after, l.warm), ms(median(l.warmCall))), "", ""},
		{fmt.Sprintf("cold SQS batch of 10, HTTP/2: connections opened to ZEGO, each of %d batches", len(h2)),
			"", conns(l.batch[before][http2]), conns(h2), fmt.Sprintf("≤ %d", maxHTTP2BatchConns), met(maxConns(h2) >= 0 && maxConns(h2) <= maxHTTP2BatchConns)},
		{"cold SQS batch of 10, HTTP/1.1 (" + http1Env + "): connections opened to ZEGO", "", conns(l.batch[before][http1]), conns(l.batch[after][http1]), "", ""},
	}
	ld := l.load
	rows = append(rows, []string{
		fmt.Sprintf("DeleteConv throughput: %d SQS messages in batches of 10, one at a time, default rate", ld.messages),
		"", "", fmt.Sprintf("%.2f requests/s, %d throttled, %d lost, %d still failing", ld.rate(), ld.throttled, ld.lost, ld.unfinished), "", ""})
	return rows
}

// latencyReport is the latency profile's section of the report.
func latencyReport(l *latencyResults) string {
	var b strings.Builder
	p := l.profile
	fmt.Fprintf(&b, "\n### Latency profile: HTTPS, ZEGO %v per round trip (set-up %v), Secrets Manager %v (set-up %v)\n\n",
		p.ZEGO.RoundTrip, p.ZEGO.Setup, p.SecretsManager.RoundTrip, p.SecretsManager.Setup)
	beforeCol := "before the warm-up"
	if l.before != "" {
		beforeCol += " (" + l.before + ")"
	}
	b.WriteString(grid([]string{"metric", "hello-world", beforeCol, "after (this commit)", "target", "met?"}, latencyRows(l)))
	b.WriteString(`
- One local stack: the ZIM server serves HTTPS (HTTP/2 and HTTP/1.1, TLS 1.3), and the functions reach it and
  moto_server's Secrets Manager through internal/local/netem proxies with netem.DefaultProfile(); admin calls and SQS go
  straight. The three bootstraps alternate, each sample in a fresh emulator, one discarded round first.
- The target's terms come from the profile: the secret path is Secrets Manager's set-up and one request; ZEGO's
  connection set-up is TCP and TLS 1.3, two round trips.
- Provisioned-like: perfbench serves the Lambda Runtime API itself, so that init ends (the runtime asks for an event)
  well before the event comes; the emulator hands the first event over the moment init ends.
- Connections: counted by the proxy in front of the ZIM server, for a fresh function's first invocation with an SQS
  batch of 10 records. HTTP/1.1 is the client offering only http/1.1 (` + http1Env + `), as against a server
  that does not offer HTTP/2.
`)
	if len(l.servers) > 0 {
		b.WriteString("\n#### First invocation by what the ZEGO server offers\n\n")
		b.WriteString(grid([]string{"ZEGO server", beforeCol, "after (this commit)", "target", "met?"}, serverRows(l)))
		b.WriteString(`
- Medians; "first call" is the function's latencyMs of its first DeleteConv call; "connections" are those each first
  invocation opened to the ZIM server (the proxy's count). HTTP/2 is the stack above; the HTTP/1.1-only servers each run
  on a stack of their own with the same profile (zimserver -tls -http1-only, and zimserver without TLS). Over plain
  HTTP the connection set-up is TCP alone, one round trip.
`)
	}
	return b.String()
}
