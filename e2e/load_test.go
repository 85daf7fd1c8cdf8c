package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// ZEGO's answers the load test counts.
const (
	codeAppIDRateLimited     = 660300005 // the AppId's 20 requests per second are used up
	codeConversationNotFound = 660800002 // already deleted
)

// loadMessage is one SQS message of the load test and what must become of it.
type loadMessage struct {
	id   string
	body string
	user string
	conv zim.Conversation
	// stored: the conversation is in the ZIM server before the run (else
	// ZEGO answers "does not exist": already deleted).
	stored  bool
	invalid bool
}

// loadMessages builds n messages for four users: every 67th is invalid,
// every 29th names a conversation that is not stored, the rest are stored
// one-on-one and group conversations, each distinct.
func loadMessages(n int) []loadMessage {
	users := []string{"load-ann", "load-ben", "load-cat", "load-dan"}
	invalid := []string{
		`{"FromUserId": "load-ann", "ConvId": "x", "ConvType": 1}`,
		`{"FromUserId": "load-ben", "ConvId": "", "ConvType": 0}`,
		`{"FromUserId": "load-cat", "ConvId": "x", "ConvType": 0, "Extra": true}`,
	}
	var out []loadMessage
	for i := range n {
		m := loadMessage{id: fmt.Sprintf("load-%03d", i), user: users[i%len(users)]}
		switch {
		case i%67 == 33:
			m.invalid = true
			m.body = invalid[(i/67)%len(invalid)]
			out = append(out, m)
			continue
		case i%2 == 0:
			m.conv = peer(fmt.Sprintf("peer-%03d", i))
		default:
			m.conv = group(fmt.Sprintf("#grp-%03d", i))
		}
		m.stored = i%29 != 5
		m.body = string(direct(m.user, m.conv.ConvID, m.conv.ConvType))
		out = append(out, m)
	}
	return out
}

// TestLoadSQS sends 200 SQS messages through the function with the default
// rate budget (20/s), in batches of 10 invoked one at a time as Lambda's
// poller does for one instance, and redelivers each reported failure as the
// queue would, until only the invalid messages are left. No message may be
// lost: each valid one ends deleted or already deleted (the ZIM server's
// store and request log agree), each invalid one stays reported failed and
// never reaches ZEGO, and the function's output holds no secret. Throughput
// and throttled answers are logged, not asserted.
func TestLoadSQS(t *testing.T) {
	s, err := devstack.Start(t.Context(), config("load", devstack.FunctionConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	}()
	w := newWorld(t, s)

	msgs := loadMessages(200)
	seeds := map[string][]zim.Conversation{}
	var wantInvalid []string
	for _, m := range msgs {
		switch {
		case m.invalid:
			wantInvalid = append(wantInvalid, m.id)
		case m.stored:
			seeds[m.user] = append(seeds[m.user], m.conv)
		}
	}
	slices.Sort(wantInvalid)
	if len(wantInvalid) != 3 {
		t.Fatalf("the load has %d invalid messages, want 3", len(wantInvalid))
	}
	for user, convs := range seeds {
		w.seed(user, convs...)
	}

	// Each delivery sends every message still failing, as the queue does
	// until its redrive policy gives up: the valid ones until they succeed,
	// the invalid ones (which must fail every time) at least twice.
	pending := msgs
	succeeded := map[string]bool{}
	invocations, deliveries := 0, 0
	start := time.Now()
	for deliveries < 6 {
		deliveries++
		var failed []loadMessage
		for batch := range slices.Chunk(pending, 10) {
			var records [][2]string
			for _, m := range batch {
				records = append(records, [2]string{m.id, m.body})
			}
			res := invoke(t, s, sqsBatch(t, records...))
			invocations++
			failures := batchFailures(t, res)
			for _, id := range failures {
				if !slices.ContainsFunc(batch, func(m loadMessage) bool { return m.id == id }) {
					t.Errorf("batchItemFailures names %q, which is not in the batch", id)
				}
			}
			for _, m := range batch {
				if outcomeLine(res, "messageId", m.id) == nil {
					t.Errorf("no outcome log line for message %s", m.id)
				}
				switch {
				case slices.Contains(failures, m.id):
					failed = append(failed, m)
					if !m.invalid {
						t.Logf("delivery %d: message %s reported failed; it is delivered again", deliveries, m.id)
					}
				case m.invalid:
					t.Errorf("delivery %d: invalid message %s (%s) was not reported failed", deliveries, m.id, m.body)
				default:
					succeeded[m.id] = true
				}
			}
		}
		pending = failed
		if deliveries >= 2 && !slices.ContainsFunc(pending, func(m loadMessage) bool { return !m.invalid }) {
			break
		}
	}
	elapsed := time.Since(start)
	var left []string
	for _, m := range pending {
		left = append(left, m.id)
	}
	slices.Sort(left)
	if !slices.Equal(left, wantInvalid) {
		t.Errorf("after %d deliveries the messages still failing are %v, want only the invalid ones %v", deliveries, left, wantInvalid)
	}

	// Every valid message succeeded, every invalid one never did.
	lost := 0
	for _, m := range msgs {
		if m.invalid == succeeded[m.id] {
			lost++
			t.Errorf("message %s (%s): reported succeeded=%t, invalid=%t", m.id, m.body, succeeded[m.id], m.invalid)
		}
	}

	// The ZIM server's view: nothing seeded is left, each valid message got
	// the answer its outcome claims, and no invalid one reached it.
	for user := range seeds {
		left, err := w.admin.Conversations(t.Context(), w.app, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("%s still has %d conversations after the load: %v", user, len(left), left)
		}
	}
	reqs := w.deletes()
	type key struct {
		user, conv string
		typ        zim.ConvType
	}
	answered := map[key][]int{}
	throttled := 0
	var accepted []time.Time
	for _, r := range reqs {
		answered[key{r.FromUserID, r.ConvID, r.ConvType}] = append(answered[key{r.FromUserID, r.ConvID, r.ConvType}], r.Code)
		switch r.Code {
		case codeAppIDRateLimited:
			throttled++
		case 0, codeConversationNotFound:
			accepted = append(accepted, r.Time)
		}
	}
	for _, m := range msgs {
		codes := answered[key{m.user, m.conv.ConvID, m.conv.ConvType}]
		switch {
		case m.invalid:
			continue
		case m.stored && !slices.Contains(codes, 0):
			t.Errorf("message %s: the ZIM server answered %v, want a deletion (Code 0)", m.id, codes)
		case !m.stored && !slices.Contains(codes, codeConversationNotFound):
			t.Errorf("message %s: the ZIM server answered %v, want \"does not exist\" (%d)", m.id, codes, codeConversationNotFound)
		}
	}
	for _, r := range reqs {
		if r.ConvID == "x" || r.ConvID == "" {
			t.Errorf("an invalid message reached the ZIM server: %v", r)
		}
	}

	// Under load too, the function never writes the ServerSecret or a signed query.
	secret := seedSecret(t)
	for _, line := range s.Function().Output() {
		if strings.Contains(line, secret) || strings.Contains(line, "Signature=") {
			t.Fatalf("the function wrote the ServerSecret or a signature: %.200s", line)
		}
	}

	stored := 0
	for _, convs := range seeds {
		stored += len(convs)
	}
	t.Logf("%d messages (%d stored conversations, %d not stored, %d invalid) in %d invocations over %d deliveries, %v: %.1f messages/s end to end; lost %d",
		len(msgs), stored, len(msgs)-stored-len(wantInvalid), len(wantInvalid), invocations, deliveries, elapsed.Round(time.Millisecond), float64(len(msgs))/elapsed.Seconds(), lost)
	if n := len(accepted); n > 1 {
		span := accepted[n-1].Sub(accepted[0])
		rate := float64(n-1) / span.Seconds()
		t.Logf("ZIM server: %d DeleteConv requests, %d accepted from first to last in %v: %.2f requests/s (%.1f%% of 20/s); %d throttled (%d)",
			len(reqs), n, span.Round(time.Millisecond), rate, rate/20*100, throttled, codeAppIDRateLimited)
	}
}
