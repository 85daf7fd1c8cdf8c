package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestDeadlineShorterThanZEGO runs a function with a 2 s deadline while ZEGO
// takes 5 s to answer: the function answers Timeout itself, before Lambda
// would kill it, and an SQS batch reports the slow record failed and the
// others done.
func TestDeadlineShorterThanZEGO(t *testing.T) {
	s := shared(t)
	const deadline = 2 * time.Second
	f, err := s.StartFunction(t.Context(), devstack.FunctionConfig{Name: uniqueName("short-deadline"), Timeout: deadline})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, s)
	w.seed("xena", peer("e2e-slow"), peer("e2e-fast"))
	w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "e2e-slow", Delay: 5 * time.Second, Times: 100})

	t.Run("direct", func(t *testing.T) {
		res := invoke(t, f, direct("xena", "e2e-slow", 0))
		if !res.FunctionError || res.ErrorType != "Timeout" {
			t.Errorf("answer %s (%s), want a Timeout function error from the function itself", res.Body, res.ErrorType)
		}
		if res.Latency >= deadline+500*time.Millisecond {
			t.Errorf("answered after %v, want within the %v deadline", res.Latency, deadline)
		}
	})

	t.Run("SQS", func(t *testing.T) {
		res := invoke(t, f, sqsBatch(t,
			[2]string{"slow", string(direct("xena", "e2e-slow", 0))},
			[2]string{"fast", string(direct("xena", "e2e-fast", 0))},
		))
		if got := batchFailures(t, res); !slices.Equal(got, []string{"slow"}) {
			t.Errorf("batchItemFailures %q, want [slow]", got)
		}
		if res.Latency >= deadline+500*time.Millisecond {
			t.Errorf("answered after %v, want within the %v deadline", res.Latency, deadline)
		}
		if w.has("xena", peer("e2e-fast")) {
			t.Error("the fast record's conversation is still stored")
		}
		if line := outcomeLine(res, "messageId", "slow"); line == nil || line.String("outcome") != "timeout" {
			t.Errorf("log line for the slow record %v, want outcome timeout", line)
		}
	})
}
