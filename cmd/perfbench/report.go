package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
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
			Metric:    "cold start: of which the first DeleteConv call, secret fetch included (function's latencyMs), median",
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
	fmt.Fprintf(&b, "Command: `make bench` (`go run ./cmd/perfbench -cold %d -warm %d -messages %d`)\n\n", o.cold, o.warm, o.messages)
	b.WriteString(table(rows(r)))
	b.WriteString(`
- Both bootstraps are built for this machine as for Lambda and run under aws-lambda-rie via internal/devstack, with the
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
	return b.String()
}
