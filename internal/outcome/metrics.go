package outcome

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// MetricsNamespace is the CloudWatch namespace of the function's metrics.
const MetricsNamespace = "ZimDeleteConv"

// Metrics writes CloudWatch Embedded Metric Format lines: at the end of each
// invocation, one line per outcome with the request count and ZEGO's latencies.
type Metrics struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	// function is the FunctionName dimension: without it the ApiFunction,
	// the QueueFunction and a second stack in the account share one series.
	function string
}

// MetricsOption configures Metrics.
type MetricsOption func(*Metrics)

// WithFunctionName adds the FunctionName dimension (AWS_LAMBDA_FUNCTION_NAME)
// to every metric: the outcome lines are dimensioned by [FunctionName,
// Outcome], the StaleSecretServed line by [FunctionName]. Without it (""),
// they have only the Outcome dimension and none, as CloudWatch refuses an
// empty dimension value.
func WithFunctionName(name string) MetricsOption {
	return func(m *Metrics) { m.function = name }
}

// NewMetrics writes EMF lines to w (standard output in Lambda).
func NewMetrics(w io.Writer, opts ...MetricsOption) *Metrics {
	m := &Metrics{w: w, now: time.Now}
	for _, o := range opts {
		o(m)
	}
	return m
}

// dimensions is the one dimension set of the function's lines: FunctionName
// (when known) and then names, whose values the line carries at its root.
func (m *Metrics) dimensions(names ...string) [][]string {
	set := make([]string, 0, 1+len(names))
	if m.function != "" {
		set = append(set, "FunctionName")
	}
	return [][]string{append(set, names...)}
}

// Counts gathers one invocation's outcomes; safe for concurrent use.
type Counts struct {
	mu        sync.Mutex
	count     map[Outcome]int
	latencyMs map[Outcome][]float64
}

// Add counts one outcome and, if ZEGO was asked, its latency.
func (c *Counts) Add(o Outcome, resp *zim.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count == nil {
		c.count, c.latencyMs = map[Outcome]int{}, map[Outcome][]float64{}
	}
	c.count[o]++
	if resp != nil && resp.Attempts > 0 {
		c.latencyMs[o] = append(c.latencyMs[o], Millis(resp.Latency))
	}
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfLine struct {
	AWS          emfMeta   `json:"_aws"`
	FunctionName string    `json:"FunctionName,omitempty"`
	Outcome      Outcome   `json:"Outcome"`
	Requests     int       `json:"Requests,omitempty"`
	ZegoLatency  []float64 `json:"ZegoLatency,omitempty"`
}

// maxEMFValues is how many values CloudWatch takes in one metric's array; a
// line with more is not extracted at all. A job deletes hundreds of
// conversations in one invocation, so its latencies span several lines.
const maxEMFValues = 100

// Flush writes c's lines, outcomes in name order: per outcome, one line with
// the request count and up to maxEMFValues latencies, then lines with the
// rest of the latencies.
func (m *Metrics) Flush(c *Counts) {
	if m == nil {
		return
	}
	c.mu.Lock()
	outcomes := make([]Outcome, 0, len(c.count))
	for o := range c.count {
		outcomes = append(outcomes, o)
	}
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i] < outcomes[j] })
	var lines [][]byte
	ts := m.now().UnixMilli()
	for _, o := range outcomes {
		lat := c.latencyMs[o]
		for first := true; first || len(lat) > 0; first = false {
			l := emfLine{FunctionName: m.function, Outcome: o, ZegoLatency: lat[:min(len(lat), maxEMFValues)]}
			lat = lat[len(l.ZegoLatency):]
			var metrics []emfMetric
			if first {
				l.Requests = c.count[o]
				metrics = append(metrics, emfMetric{Name: "Requests", Unit: "Count"})
			}
			if len(l.ZegoLatency) > 0 {
				metrics = append(metrics, emfMetric{Name: "ZegoLatency", Unit: "Milliseconds"})
			}
			l.AWS = emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
				Namespace: MetricsNamespace, Dimensions: m.dimensions("Outcome"), Metrics: metrics,
			}}}
			b, _ := json.Marshal(l) // plain values: cannot fail
			lines = append(lines, append(b, '\n'))
		}
	}
	c.count, c.latencyMs = nil, nil
	c.mu.Unlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range lines {
		_, _ = m.w.Write(b) // a lost metric line must not fail the invocation
	}
}

// Millis is d in milliseconds, to the microsecond, as the logs and metrics report latencies.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// StaleSecretMetric counts calls answered with cached credentials past their
// TTL because Secrets Manager could not be reached (the secret cache's grace).
const StaleSecretMetric = "StaleSecretServed"

// FlushStale writes one line counting n calls served with stale credentials;
// nothing when n is 0, so a healthy function writes no such line.
func (m *Metrics) FlushStale(n int) { m.flushCount(StaleSecretMetric, n) }

// BudgetTableErrorsMetric counts the shared rate budget's failed table calls
// (throttled, an error, too slow): while they last, the instance keeps to its floor.
const BudgetTableErrorsMetric = "BudgetTableErrors"

// FlushBudgetErrors writes one line counting n failed budget table calls;
// nothing when n is 0.
func (m *Metrics) FlushBudgetErrors(n int) { m.flushCount(BudgetTableErrorsMetric, n) }

// JobRoundsMetric counts the rounds of AllConversations jobs that ran, and
// JobsCompletedMetric the jobs that ended complete.
const (
	JobRoundsMetric     = "JobRounds"
	JobsCompletedMetric = "JobsCompleted"
)

// FlushJobs writes the job rounds run and the jobs completed; nothing for a 0.
func (m *Metrics) FlushJobs(rounds, completed int) {
	m.flushCount(JobRoundsMetric, rounds)
	m.flushCount(JobsCompletedMetric, completed)
}

// flushCount writes one line with metric = n, dimensioned by FunctionName
// only; nothing when n is 0.
func (m *Metrics) flushCount(metric string, n int) {
	if m == nil || n <= 0 {
		return
	}
	l := map[string]any{metric: n, "_aws": emfMeta{Timestamp: m.now().UnixMilli(), CloudWatchMetrics: []emfDirective{{
		Namespace: MetricsNamespace, Dimensions: m.dimensions(), Metrics: []emfMetric{{Name: metric, Unit: "Count"}},
	}}}}
	if m.function != "" {
		l["FunctionName"] = m.function
	}
	b, _ := json.Marshal(l) // plain values: cannot fail
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.w.Write(append(b, '\n'))
}

// BudgetWaitMetric is how long each call waited for its rate budget slot
// (floor or pool), in milliseconds.
const BudgetWaitMetric = "BudgetWaitMs"

type emfBudgetWaitLine struct {
	AWS          emfMeta   `json:"_aws"`
	FunctionName string    `json:"FunctionName,omitempty"`
	Waits        []float64 `json:"BudgetWaitMs"`
}

// FlushBudgetWaits writes the waits, up to maxEMFValues a line; nothing when
// there are none.
func (m *Metrics) FlushBudgetWaits(waits []time.Duration) {
	if m == nil || len(waits) == 0 {
		return
	}
	ts := m.now().UnixMilli()
	var lines [][]byte
	for len(waits) > 0 {
		n := min(len(waits), maxEMFValues)
		l := emfBudgetWaitLine{FunctionName: m.function, Waits: make([]float64, n), AWS: emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
			Namespace: MetricsNamespace, Dimensions: m.dimensions(), Metrics: []emfMetric{{Name: BudgetWaitMetric, Unit: "Milliseconds"}},
		}}}}
		for i, d := range waits[:n] {
			l.Waits[i] = Millis(d)
		}
		waits = waits[n:]
		b, _ := json.Marshal(l) // plain values: cannot fail
		lines = append(lines, append(b, '\n'))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range lines {
		_, _ = m.w.Write(b)
	}
}
