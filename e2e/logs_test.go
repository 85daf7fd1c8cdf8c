package e2e

import (
	"fmt"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestInvocationLinesCarryTheRequestID: through the real bootstrap, every
// log line of an invocation, the client's retry warning included, carries
// the Lambda request id once, and the metric lines are EMF dimensioned by
// [FunctionName, Outcome] with both values set.
func TestInvocationLinesCarryTheRequestID(t *testing.T) {
	s := shared(t)
	w := newWorld(t, s)
	w.seed("uma", peer("e2e-logs"))
	w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "e2e-logs", Code: 1}) // retried once

	res := invoke(t, s, direct("uma", "e2e-logs", 0))
	if got := directSuccess(t, res); got.Outcome != "deleted" {
		t.Fatalf("answer %+v, want deleted after a retry", got)
	}
	var retried, metrics bool
	for _, l := range res.Logs {
		if aws, ok := l["_aws"].(map[string]any); ok {
			metrics = true
			// Outcome lines are dimensioned by function and outcome, the
			// others (the budget's waits, stale secrets) by function only.
			dims := fmt.Sprint(aws["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"])
			want := "[[FunctionName]]"
			if l.String("Outcome") != "" {
				want = "[[FunctionName Outcome]]"
			}
			if dims != want || l.String("FunctionName") != devstack.FunctionName+"-api" {
				t.Errorf("metric line %v: want dimensions %s and FunctionName %s-api", l, want, devstack.FunctionName)
			}
			continue
		}
		retried = retried || l.String("msg") == "zim: retrying"
		if l.String("requestId") != res.RequestID {
			t.Errorf("log line without the request id %s: %v", res.RequestID, l)
		}
	}
	if !retried || !metrics {
		t.Errorf("retry line %v, metric line %v; want both among %v", retried, metrics, res.Logs)
	}
}
