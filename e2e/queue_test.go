package e2e

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// queueStack starts a stack of its own with the local job queue, the queue
// function and the poller (the template's redrive settings unless qc says
// otherwise), and returns it with its queue.
func queueStack(t *testing.T, name string, qc devstack.QueueConfig) (*devstack.Stack, *devstack.Queue) {
	t.Helper()
	cfg := config(name, devstack.FunctionConfig{})
	cfg.Queue = &qc
	s, err := devstack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, s.Queue()
}

// waitDrained waits until the job queue holds nothing, for at most limit.
func waitDrained(t *testing.T, q *devstack.Queue, limit time.Duration) devstack.QueueCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	if err := q.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := q.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func bodies(msgs ...[]byte) []devstack.Message {
	var out []devstack.Message
	for _, m := range msgs {
		out = append(out, devstack.Message{Body: string(m)})
	}
	return out
}

// TestQueueDeletesValidMessagesAndRedrivesInvalidOnes sends single deletions
// and invalid requests to the standard job queue: the real bootstrap deletes
// each conversation once, reports the invalid records failed, and the queue
// moves those to the dead-letter queue after MaxReceiveCount deliveries.
func TestQueueDeletesValidMessagesAndRedrivesInvalidOnes(t *testing.T) {
	const timeout = time.Second // the visibility timeout is 6 s
	s, q := queueStack(t, "queue-standard", devstack.QueueConfig{Function: devstack.FunctionConfig{Timeout: timeout}})
	w := newWorld(t, s)
	convs, err := s.SeedConversations(t.Context(), "quinn", 24)
	if err != nil {
		t.Fatal(err)
	}
	var valid [][]byte
	for _, c := range convs {
		valid = append(valid, direct("quinn", c.ConvID, c.ConvType))
	}
	invalid := [][]byte{
		[]byte(`{"FromUserId": "quinn", "ConvId": "peer-000001", "ConvType": 1}`),
		[]byte(`not JSON`),
		[]byte(`{"FromUserId": "quinn", "ConvId": "peer-000002", "ConvType": 0, "Extra": true}`),
	}
	validIDs, err := q.Send(t.Context(), bodies(valid...)...)
	if err != nil {
		t.Fatal(err)
	}
	invalidIDs, err := q.Send(t.Context(), bodies(invalid...)...)
	if err != nil {
		t.Fatal(err)
	}

	c := waitDrained(t, q, 2*time.Minute)
	if c.DeadLetters != len(invalid) {
		t.Errorf("%d messages in the dead-letter queue, want the %d invalid ones", c.DeadLetters, len(invalid))
	}
	dl, err := q.DeadLetters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var dlIDs []string
	for _, m := range dl {
		dlIDs = append(dlIDs, m.MessageID)
	}
	slices.Sort(dlIDs)
	slices.Sort(invalidIDs)
	if !slices.Equal(dlIDs, invalidIDs) {
		t.Errorf("dead letters %v, want the invalid messages %v", dlIDs, invalidIDs)
	}
	receives := q.Receives()
	for _, id := range invalidIDs {
		if receives[id] != devstack.DefaultMaxReceiveCount {
			t.Errorf("invalid message %s delivered %d times, want MaxReceiveCount %d", id, receives[id], devstack.DefaultMaxReceiveCount)
		}
	}
	for i, id := range validIDs {
		if receives[id] == 0 {
			t.Errorf("valid message %d never delivered", i)
		}
	}
	left, err := w.admin.Conversations(t.Context(), w.app, "quinn")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d of quinn's conversations left, want none: %v", len(left), left)
	}
	deleted := map[zim.Conversation]int{}
	for _, r := range w.deletes() {
		if r.Code == 0 && r.HTTPStatus == 200 {
			deleted[zim.Conversation{ConvID: r.ConvID, ConvType: r.ConvType}]++
		}
	}
	for _, cv := range convs {
		if deleted[zim.Conversation{ConvID: cv.ConvID, ConvType: cv.ConvType}] != 1 {
			t.Errorf("conversation %s deleted %d times, want once", cv.ConvID, deleted[cv])
		}
	}
	for _, b := range q.Batches() {
		if b.WholeBatch != "" || b.Err != nil {
			t.Errorf("batch on %s: whole batch left (%s), error %v", b.Function, b.WholeBatch, b.Err)
		}
	}
}

// TestQueueFunctionTimeoutReturnsTheBatch freezes the queue function's
// bootstrap (as a hung process would be), so its invocation runs into
// Lambda's timeout: the poller deletes nothing, and both messages come back
// after the visibility timeout and are deleted by the restarted function.
func TestQueueFunctionTimeoutReturnsTheBatch(t *testing.T) {
	const timeout = time.Second
	s, q := queueStack(t, "queue-timeout", devstack.QueueConfig{Instances: 1, Function: devstack.FunctionConfig{Timeout: timeout}})
	w := newWorld(t, s)
	w.seed("rosa", peer("e2e-t1"), peer("e2e-t2"))
	fn := s.QueueFunctions()[0]
	// Start the bootstrap with a direct invoke, then stop it.
	invoke(t, fn, sample(t, "direct.json"))
	var pid int
	for _, p := range fn.Processes() {
		if p.Name == "bootstrap" {
			pid = p.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no bootstrap below %s: %v", fn.Name, fn.Processes())
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)

	ids, err := q.Send(t.Context(), bodies(direct("rosa", "e2e-t1", 0), direct("rosa", "e2e-t2", 0))...)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDrained(t, q, time.Minute)
	if c.DeadLetters != 0 {
		t.Errorf("%d messages in the dead-letter queue, want none", c.DeadLetters)
	}
	batches := q.Batches()
	first := batches[0]
	if first.WholeBatch != "function error "+devstack.TimedOutErrorType || !slices.Equal(first.Failed, ids) {
		t.Errorf("first batch: whole batch %q, left %v; want both messages left after %s", first.WholeBatch, first.Failed, devstack.TimedOutErrorType)
	}
	receives := q.Receives()
	for _, id := range ids {
		if receives[id] != 2 {
			t.Errorf("message %s delivered %d times, want 2 (once into the timeout, once after the visibility timeout)", id, receives[id])
		}
	}
	for _, conv := range []string{"e2e-t1", "e2e-t2"} {
		if w.has("rosa", peer(conv)) {
			t.Errorf("conversation %s still stored", conv)
		}
	}
	if t.Failed() {
		for _, b := range batches {
			t.Logf("batch on %s at %s: %d messages, whole batch %q, failed %v, %s", b.Function, b.Start.Format(time.StampMilli), len(b.Messages), b.WholeBatch, b.Failed, b.Result.Body)
		}
	}
}
