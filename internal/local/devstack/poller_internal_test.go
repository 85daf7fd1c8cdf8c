package devstack

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// A copy of a message already being delivered, as moto's racing receives
// hand out, is not delivered a second time; once the first delivery has
// settled the message may come again.
func TestPollerClaimDropsCopiesInFlight(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	p := newPoller(&Queue{cfg: QueueConfig{VisibilityTimeout: time.Minute}}, &log)
	msg := func(id string) types.Message { return types.Message{MessageId: aws.String(id)} }
	ids := func(ms []types.Message) string {
		var s []string
		for _, m := range ms {
			s = append(s, aws.ToString(m.MessageId))
		}
		return strings.Join(s, ",")
	}
	steps := []struct {
		got  []types.Message
		want string
	}{
		{[]types.Message{msg("a"), msg("b")}, "a,b"},
		{[]types.Message{msg("b"), msg("c")}, "c"}, // b is in flight
	}
	for i, st := range steps {
		if got := ids(p.claim(st.got)); got != st.want {
			t.Errorf("step %d: claimed %q, want %q", i, got, st.want)
		}
	}
	if busy, _ := p.held(); busy != 3 {
		t.Errorf("busy = %d, want 3", busy)
	}
	if !strings.Contains(log.String(), `"duplicateReceive":["b"]`) {
		t.Errorf("log %q does not name the copy of b", log.String())
	}
	p.mu.Lock()
	delete(p.inFlight, "b") // b's delivery settled
	p.mu.Unlock()
	if got := ids(p.claim([]types.Message{msg("b")})); got != "b" {
		t.Errorf("after b settled: claimed %q, want b", got)
	}
}

// A queue read once as empty is not drained: moto can count a message whose
// visibility timeout is just ending in neither the visible nor the in-flight
// count. The wait ends only on two empty reads in a row.
func TestWaitStableNeedsTwoReadsInARow(t *testing.T) {
	inFlight, empty := QueueCounts{InFlight: 1}, QueueCounts{}
	reads := []QueueCounts{inFlight, empty, QueueCounts{Visible: 1}, inFlight, empty, empty, inFlight}
	n := 0
	read := func(context.Context) (QueueCounts, error) {
		c := reads[n]
		n++
		return c, nil
	}
	drained := func(c QueueCounts) bool { return c.Visible+c.InFlight+c.Delayed == 0 }
	if _, err := waitStable(t.Context(), time.Microsecond, read, drained); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("the wait ended after %d reads, want 6 (the second of two empty reads in a row)", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := waitStable(ctx, time.Microsecond, func(context.Context) (QueueCounts, error) { return inFlight, nil }, drained); !errors.Is(err, context.Canceled) {
		t.Errorf("a wait whose context ended: %v, want context.Canceled", err)
	}
}
