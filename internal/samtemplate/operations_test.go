package samtemplate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
)

// emfDimensions is the dimension set of each metric the function writes (EMF, namespace outcome.MetricsNamespace)
// that the alarms and the dashboard read: issue 19 adds the function's name beside the outcome, so that the two
// functions, and a second stack in the same account, are separate series. The job and budget metrics are the
// ones the dashboard reads. A series of another dimension set is another metric in
// CloudWatch: an alarm on it would never fire.
var emfDimensions = map[string][]string{
	"Requests":                {"FunctionName", "Outcome"},
	"ZegoLatency":             {"FunctionName", "Outcome"},
	outcome.StaleSecretMetric: {"FunctionName"},
	"JobRounds":               {"FunctionName"},
	"JobsCompleted":           {"FunctionName"},
	"BudgetTableErrors":       {"FunctionName"},
	"BudgetWaitMs":            {"FunctionName"},
}

// outcomes are the values of the Outcome dimension: every outcome the function counts.
var outcomes = []outcome.Outcome{outcome.Deleted, outcome.AlreadyDeleted, outcome.InvalidRequest, outcome.Forbidden,
	outcome.Throttled, outcome.UpstreamError, outcome.Timeout, outcome.ConfigurationError, outcome.Unavailable,
	outcome.Skipped, outcome.InternalError, outcome.Accepted}

// series is one CloudWatch metric: namespace, name and dimensions.
type series struct {
	namespace, name string
	dims            map[string]string
}

func (m series) String() string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(m.dims)) {
		d = append(d, k+"="+m.dims[k])
	}
	return m.namespace + "/" + m.name + "{" + strings.Join(d, ",") + "}"
}

// TestAlarms checks the alarms an operator needs (issue 19): the dead-letter queue, failed asynchronous invokes,
// the queue's oldest message, throttled and configuration-error outcomes, function errors and stale secrets, each
// per function on the dimensions the function writes, and the queue's upstream_error and unavailable outcomes (an
// outage its records back off from), all notifying AlarmTopicArn when it is set.
func TestAlarms(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		queue, dlq, failed := consumedQueue(t, s), deadLetterQueue(t, s), failedInvocationsQueue(t, s)
		type want struct {
			series
			stat string
			// maxThreshold: the alarm must fire at or below it (GreaterThanThreshold).
			maxThreshold float64
		}
		wants := []want{
			{series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "{GetAtt:" + dlq + ".QueueName}"}}, "Maximum", 0},
			{series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "{GetAtt:" + failed + ".QueueName}"}}, "Maximum", 0},
			// An hour: longer than a healthy backlog takes, shorter than a failing record's backoff takes to
			// reach the dead-letter queue (TestBackoffOutlastsAnOutage).
			{series{"AWS/SQS", "ApproximateAgeOfOldestMessage", map[string]string{"QueueName": "{GetAtt:" + queue + ".QueueName}"}}, "Maximum", 3600},
		}
		for _, fn := range []string{apiFunctionID, queueFunctionID} {
			name := "{Ref:" + fn + "}"
			for _, o := range []outcome.Outcome{outcome.Throttled, outcome.ConfigurationError} {
				wants = append(wants, want{series{outcome.MetricsNamespace, "Requests", map[string]string{"FunctionName": name, "Outcome": string(o)}}, "Sum", 0})
			}
			// Records that back off are left out of the queue's oldest-message age after three receives: the
			// queue's transient outcomes tell an outage.
			if fn == queueFunctionID {
				for _, o := range []outcome.Outcome{outcome.UpstreamError, outcome.Unavailable} {
					wants = append(wants, want{series{outcome.MetricsNamespace, "Requests", map[string]string{"FunctionName": name, "Outcome": string(o)}}, "Sum", 0})
				}
			}
			wants = append(wants,
				want{series{outcome.MetricsNamespace, outcome.StaleSecretMetric, map[string]string{"FunctionName": name}}, "Sum", 0},
				want{series{"AWS/Lambda", "Errors", map[string]string{"FunctionName": name}}, "Sum", 0})
		}

		alarms := map[string]string{} // series -> alarm id
		for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
			a := s.Resources[id].Properties
			m := series{scalar(a["Namespace"]), scalar(a["MetricName"]), map[string]string{}}
			for _, d := range asList(a["Dimensions"]) {
				m.dims[scalar(asMap(d)["Name"])] = scalar(asMap(d)["Value"])
			}
			alarms[m.String()] = id

			// Every alarm notifies the topic when there is one, and nothing otherwise.
			var topic []any
			if arn := c.params["AlarmTopicArn"]; arn != "" {
				topic = []any{arn}
			}
			for _, prop := range []string{"AlarmActions", "OKActions"} {
				if fmt.Sprint(asList(a[prop])) != fmt.Sprint(topic) {
					t.Errorf("alarm %s: %s %v, want %v", id, prop, a[prop], topic)
				}
			}
			// The function's metrics have no data while nothing happens: that is not a breach.
			if a["TreatMissingData"] != "notBreaching" {
				t.Errorf("alarm %s: TreatMissingData %v, want notBreaching", id, a["TreatMissingData"])
			}
			if m.namespace == outcome.MetricsNamespace {
				if dims, ok := emfDimensions[m.name]; !ok || !slices.Equal(slices.Sorted(maps.Keys(m.dims)), dims) {
					t.Errorf("alarm %s on %v: the function writes %s with the dimensions %v", id, m, m.name, dims)
				}
			}
		}
		for _, w := range wants {
			id, ok := alarms[w.String()]
			if !ok {
				t.Errorf("no alarm on %v", w.series)
				continue
			}
			a := s.Resources[id].Properties
			if a["Statistic"] != w.stat || a["ComparisonOperator"] != "GreaterThanThreshold" || !(number(a["Threshold"]) <= w.maxThreshold) {
				t.Errorf("alarm %s on %v: %v %v %v, want the %s %s %v or less", id, w.series, a["Statistic"],
					a["ComparisonOperator"], a["Threshold"], w.stat, "GreaterThanThreshold", w.maxThreshold)
			}
		}
	})
}

// TestDashboard checks the dashboard (issue 19): its body is valid JSON once CloudFormation has substituted it,
// and it shows deletions per outcome of each function, ZEGO's latency, the queue's depth and age, the dead-letter
// and failed-invocations queues, jobs, the rate budget's use, and every alarm.
func TestDashboard(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		ids := s.ofType("AWS::CloudWatch::Dashboard")
		if len(ids) != 1 {
			t.Fatalf("dashboards %v, want one", ids)
		}
		raw, ok := s.Resources[ids[0]].Properties["DashboardBody"].(string)
		if !ok {
			t.Fatalf("DashboardBody %v is not a string after substitution", s.Resources[ids[0]].Properties["DashboardBody"])
		}
		if strings.Contains(raw, "${") {
			t.Errorf("DashboardBody has an unsubstituted ${...}: %s", raw)
		}
		var body struct {
			Widgets []struct {
				Type       string
				X, Y       *int
				Width      int
				Height     int
				Properties struct {
					Title   string
					Region  string
					Metrics [][]any
					Alarms  []string
				}
			}
		}
		if err := json.Unmarshal([]byte(raw), &body); err != nil {
			t.Fatalf("DashboardBody is not valid JSON after substitution: %v\n%s", err, raw)
		}

		shown := map[string]bool{}
		var alarms []string
		for _, w := range body.Widgets {
			p := w.Properties
			if w.X == nil || w.Y == nil || w.Width < 1 || w.Width > 24 || w.Height < 1 {
				t.Errorf("widget %q: position %v,%v size %dx%d, want x, y and a width of 1 to 24", p.Title, w.X, w.Y, w.Width, w.Height)
			}
			switch w.Type {
			case "metric":
				if p.Region != pseudoParams["AWS::Region"] {
					t.Errorf("widget %q: region %q, want the stack's", p.Title, p.Region)
				}
				for _, m := range p.Metrics {
					sr, err := metricSeries(m)
					if err != nil {
						t.Errorf("widget %q: %v", p.Title, err)
						continue
					}
					shown[sr.String()] = true
					if sr.namespace == outcome.MetricsNamespace {
						if dims, ok := emfDimensions[sr.name]; !ok || !slices.Equal(slices.Sorted(maps.Keys(sr.dims)), dims) {
							t.Errorf("widget %q shows %v: the function writes %s with the dimensions %v", p.Title, sr, sr.name, dims)
						}
					}
				}
			case "alarm":
				alarms = append(alarms, p.Alarms...)
			case "text":
			default:
				t.Errorf("widget %q has type %q", p.Title, w.Type)
			}
		}

		queue, dlq, failed, table := consumedQueue(t, s), deadLetterQueue(t, s), failedInvocationsQueue(t, s), stateTable(t, s)
		var wants []series
		for _, fn := range []string{apiFunctionID, queueFunctionID} {
			name := "{Ref:" + fn + "}"
			for _, o := range outcomes {
				wants = append(wants, series{outcome.MetricsNamespace, "Requests", map[string]string{"FunctionName": name, "Outcome": string(o)}})
			}
			wants = append(wants,
				series{outcome.MetricsNamespace, "ZegoLatency", map[string]string{"FunctionName": name, "Outcome": string(outcome.Deleted)}},
				series{outcome.MetricsNamespace, "JobRounds", map[string]string{"FunctionName": name}},
				series{outcome.MetricsNamespace, "JobsCompleted", map[string]string{"FunctionName": name}},
				series{outcome.MetricsNamespace, "BudgetWaitMs", map[string]string{"FunctionName": name}},
				series{outcome.MetricsNamespace, "BudgetTableErrors", map[string]string{"FunctionName": name}},
				series{"AWS/Lambda", "Errors", map[string]string{"FunctionName": name}})
		}
		wants = append(wants,
			series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "{GetAtt:" + queue + ".QueueName}"}},
			series{"AWS/SQS", "ApproximateAgeOfOldestMessage", map[string]string{"QueueName": "{GetAtt:" + queue + ".QueueName}"}},
			series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "{GetAtt:" + dlq + ".QueueName}"}},
			series{"AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "{GetAtt:" + failed + ".QueueName}"}},
			series{"AWS/DynamoDB", "ConsumedWriteCapacityUnits", map[string]string{"TableName": "{Ref:" + table + "}"}})
		for _, w := range wants {
			if !shown[w.String()] {
				t.Errorf("the dashboard does not show %v", w)
			}
		}
		for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
			if !slices.Contains(alarms, "{GetAtt:"+id+".Arn}") {
				t.Errorf("the dashboard's alarm widgets do not show %s (they show %v)", id, alarms)
			}
		}
		if url := scalar(s.Outputs["DashboardUrl"]); !strings.HasSuffix(url, "#dashboards:name={Ref:"+ids[0]+"}") {
			t.Errorf("output DashboardUrl %q, want the console link to {Ref:%s}", url, ids[0])
		}
	})
}

// metricSeries reads one entry of a metric widget's "metrics": namespace, name, dimension name/value pairs, and
// an optional options object last.
func metricSeries(m []any) (series, error) {
	if len(m) > 0 {
		if _, ok := m[len(m)-1].(map[string]any); ok {
			m = m[:len(m)-1]
		}
	}
	if len(m) < 2 || len(m)%2 != 0 {
		return series{}, fmt.Errorf("metric %v: want namespace, name and dimension name/value pairs", m)
	}
	s := series{dims: map[string]string{}}
	for i, v := range m {
		str, ok := v.(string)
		if !ok || str == "" || str == "." {
			return series{}, fmt.Errorf("metric %v: item %d is %v, want a non-empty string written out", m, i, v)
		}
	}
	s.namespace, s.name = m[0].(string), m[1].(string)
	for i := 2; i < len(m); i += 2 {
		s.dims[m[i].(string)] = m[i+1].(string)
	}
	return s, nil
}

// TestAsyncFailureDestination checks that an asynchronous invoke that still fails after Lambda's retries is kept
// (issue 19): every way a function can be invoked asynchronously (each alias, and $LATEST for an unqualified
// invoke) sends such an event to the failed-invocations queue, a queue of its own, which the function's role may
// send to (TestRoles) and an alarm watches (TestAlarms).
func TestAsyncFailureDestination(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		failed := failedInvocationsQueue(t, s)
		if failed == consumedQueue(t, s) || failed == deadLetterQueue(t, s) {
			t.Errorf("failed asynchronous invokes go to %s: Lambda's destination records are no request objects, and would "+
				"fail again in the job queue or after a redrive of the dead-letter queue", failed)
		}
		for _, fn := range []string{apiFunctionID, queueFunctionID} {
			qualifiers := []string{"$LATEST"}
			for _, a := range s.ofType("AWS::Lambda::Alias") {
				if r := s.Resources[a]; scalar(r.Properties["FunctionName"]) == "{Ref:"+fn+"}" {
					qualifiers = append(qualifiers, scalar(r.Properties["Name"]))
				}
			}
			for _, q := range qualifiers {
				var found bool
				for _, id := range s.ofType("AWS::Lambda::EventInvokeConfig") {
					p := s.Resources[id].Properties
					if scalar(p["FunctionName"]) != "{Ref:"+fn+"}" || scalar(p["Qualifier"]) != q {
						continue
					}
					found = true
					if v, ok := p["MaximumRetryAttempts"]; ok && number(v) > 2 {
						t.Errorf("%s: MaximumRetryAttempts %v, Lambda allows 0 to 2", id, v)
					}
				}
				if !found {
					t.Errorf("%s:%s has no EventInvokeConfig: an asynchronous invoke that fails is dropped after Lambda's retries", fn, q)
				}
			}
		}
		if s.Outputs["FailedInvocationsQueueUrl"] != "{Ref:"+failed+"}" {
			t.Errorf("output FailedInvocationsQueueUrl %v, want {Ref:%s}", s.Outputs["FailedInvocationsQueueUrl"], failed)
		}
	})
}
