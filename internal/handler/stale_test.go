package handler

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
)

// TestStaleSecretIsCounted: each invocation reports how many calls the secret
// cache answered with credentials past their TTL since the previous report,
// as an EMF count an alarm can watch; none when there were none.
func TestStaleSecretIsCounted(t *testing.T) {
	t.Parallel()
	emf := &testutil.Buffer{}
	served := 0
	h := New(nil, slog.New(slog.DiscardHandler), outcome.NewMetrics(emf), "", errors.New("unused"),
		WithStaleCount(func() int { return served }))
	staleCounts := func(from int) []int {
		var out []int
		for _, line := range strings.Split(strings.TrimSpace(emf.String()[from:]), "\n") {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("EMF line %q: %v", line, err)
			}
			if n, ok := l[outcome.StaleSecretMetric].(float64); ok {
				out = append(out, int(n))
			}
		}
		return out
	}
	for _, step := range []struct{ served, want int }{{0, 0}, {3, 3}, {3, 0}, {5, 2}} {
		served = step.served
		from := len(emf.String())
		_, _ = h.Invoke(t.Context(), []byte(`{"FromUserId":"alice","ConvId":"bob","ConvType":0}`))
		got := staleCounts(from)
		switch {
		case step.want == 0 && len(got) != 0:
			t.Errorf("served %d: stale lines %v, want none", step.served, got)
		case step.want > 0 && (len(got) != 1 || got[0] != step.want):
			t.Errorf("served %d: stale lines %v, want one counting %d", step.served, got, step.want)
		}
	}
}
