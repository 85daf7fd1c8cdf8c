package handler

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestSQSSampleEvent(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.seed("dave", peer("alice"))
	hs.seed("carol", group("#team-7"))
	payload, err := os.ReadFile("../../events/sqs.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := hs.invoke(payload, 10*time.Second)
	failed := decodeSQS(t, out, err)
	if !slices.Equal(failed, []string{"7d2e4b8a-6d1f-4c52-9a0e-3f7f1c9b2a11"}) {
		t.Fatalf("batchItemFailures = %v, want only the invalid third record", failed)
	}
	if len(hs.srv.Conversations(testAppID, "dave")) != 0 || len(hs.srv.Conversations(testAppID, "carol")) != 0 {
		t.Errorf("valid records were not deleted")
	}
	byID := map[string]map[string]any{}
	for _, l := range hs.outcomeLines() {
		byID[l["messageId"].(string)] = l
	}
	if l := byID["7d2e4b8a-6d1f-4c52-9a0e-3f7f1c9b2a11"]; l["outcome"] != "invalid_request" || l["error"] != "ConvType must be 0 (one-on-one) or 2 (group)" {
		t.Errorf("invalid record's log line = %v", l)
	}
	if l := byID["059f36b4-87a3-44ab-83d2-661975830a7d"]; l["outcome"] != "deleted" || l["zegoRequestId"] == "" || l["attempts"] != float64(1) {
		t.Errorf("deleted record's log line = %v", l)
	}
}

func TestSQSReportsExactlyTheFailedRecords(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	var recs []sqsRecord
	var want []string
	for i := range 10 {
		conv := fmt.Sprintf("c%d", i)
		hs.seed("u", peer(conv))
		id := fmt.Sprintf("m-%d", i)
		b := body("u", conv, 0)
		switch i {
		case 2:
			b = `{"FromUserId":"u"`
			want = append(want, id)
		case 5:
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: conv, Code: 660500002})
			want = append(want, id)
		case 7:
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: conv, Code: 660300005, Times: 3})
			want = append(want, id)
		case 8:
			b = body("u", "gone", 0) // already deleted: success
		}
		recs = append(recs, sqsRecord{id: id, body: b})
	}
	out, err := hs.invoke(sqsEvent(t, recs...), 10*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, want) {
		t.Fatalf("batchItemFailures = %v, want %v", got, want)
	}
	if n := len(hs.outcomeLines()); n != 10 {
		t.Errorf("%d outcome lines, want one per record", n)
	}
}

func TestSQSFIFOGroupKeepsOrderAfterAFailure(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	for _, c := range []string{"a1", "a2", "a3", "b1", "b2"} {
		hs.seed("u", peer(c))
	}
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "a2", Code: 660500002})
	ev := sqsEvent(t,
		sqsRecord{"m-a1", body("u", "a1", 0), "A"},
		sqsRecord{"m-b1", body("u", "b1", 0), "B"},
		sqsRecord{"m-a2", body("u", "a2", 0), "A"},
		sqsRecord{"m-a3", body("u", "a3", 0), "A"},
		sqsRecord{"m-b2", body("u", "b2", 0), "B"},
	)
	out, err := hs.invoke(ev, 10*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"m-a2", "m-a3"}) {
		t.Fatalf("batchItemFailures = %v, want m-a2 and m-a3", got)
	}
	var seen []string
	for _, r := range hs.srv.Requests() {
		seen = append(seen, r.ConvID)
	}
	if slices.Contains(seen, "a3") {
		t.Errorf("a3 was attempted after a2 failed in its group: %v", seen)
	}
	if slices.Index(seen, "a1") > slices.Index(seen, "a2") {
		t.Errorf("group A out of order: %v", seen)
	}
	left := hs.srv.Conversations(testAppID, "u")
	if len(left) != 2 {
		t.Errorf("left %v, want a2 and a3", left)
	}
	for _, l := range hs.outcomeLines() {
		if l["messageId"] == "m-a3" && l["outcome"] != "skipped" {
			t.Errorf("m-a3 logged as %v", l["outcome"])
		}
	}
}

func TestSQSDeadlineReportsUnfinishedRecordsAndReturnsInTime(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): the deadline, the rate
	// limiter and the slow answers are exact however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		hs := newHarness(t, inProcess())
		var recs []sqsRecord
		for i := range 4 {
			conv := fmt.Sprintf("c%d", i)
			hs.seed("u", peer(conv))
			recs = append(recs, sqsRecord{id: fmt.Sprintf("m-%d", i), body: body("u", conv, 0)})
		}
		hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "c1", Delay: 10 * time.Second})
		hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "c3", Delay: 10 * time.Second})
		const timeout = 800 * time.Millisecond
		start := time.Now()
		out, err := hs.invoke(sqsEvent(t, recs...), timeout)
		if took := time.Since(start); took >= timeout {
			t.Errorf("handler returned after %v, past the %v deadline", took, timeout)
		}
		if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"m-1", "m-3"}) {
			t.Fatalf("batchItemFailures = %v, want the two slow records", got)
		}
	})
}

func TestSQSSlowLimiterReportsRecordsFailedNotLost(t *testing.T) {
	t.Parallel()
	// Virtual time (testing/synctest, ZIM in process): the deadline, the rate
	// limiter and the slow answers are exact however loaded the machine is.
	synctest.Test(t, func(t *testing.T) {
		// One request every 2 s: with a 1 s deadline only the first record gets a slot.
		hs := newHarness(t, inProcess(), withRate(0.5))
		var recs []sqsRecord
		for i := range 5 {
			conv := fmt.Sprintf("c%d", i)
			hs.seed("u", peer(conv))
			recs = append(recs, sqsRecord{id: fmt.Sprintf("m-%d", i), body: body("u", conv, 0)})
		}
		out, err := hs.invoke(sqsEvent(t, recs...), time.Second)
		failed := decodeSQS(t, out, err)
		deleted := 5 - len(hs.srv.Conversations(testAppID, "u"))
		if deleted+len(failed) != 5 || deleted < 1 || len(failed) < 3 {
			t.Fatalf("deleted %d, failed %v: every record must end deleted or reported failed", deleted, failed)
		}
		for _, l := range hs.outcomeLines() {
			if slices.Contains(failed, l["messageId"].(string)) && l["outcome"] != "throttled" && l["outcome"] != "timeout" {
				t.Errorf("failed record logged as %v", l)
			}
		}
	})
}

func TestSQSEmptyObjectRecordIsReportedFailed(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	out, err := hs.invoke([]byte(`{"Records":[{"messageId":"m","eventSource":"aws:sqs","body":"{}"}]}`), time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("got %v", got)
	}
	var raw map[string]json.RawMessage
	mustUnmarshal(t, out, &raw)
	if _, ok := raw["batchItemFailures"]; !ok {
		t.Fatalf("no batchItemFailures in %s", out)
	}
}

// onStandardQueue moves every record of an SQS event to the sample's standard
// queue, keeping their MessageGroupId: a fair queue, where SQS sets
// MessageGroupId but no SequenceNumber.
func onStandardQueue(t *testing.T, ev []byte) []byte {
	t.Helper()
	arn := sample(t, "sqs.json")["Records"].([]any)[0].(map[string]any)["eventSourceARN"]
	var m map[string]any
	mustUnmarshal(t, ev, &m)
	for _, r := range m["Records"].([]any) {
		rec := r.(map[string]any)
		rec["eventSourceARN"] = arn
		delete(rec["attributes"].(map[string]any), "SequenceNumber")
	}
	return mustJSON(t, m)
}

func TestSQSFairQueueGroupDoesNotSkip(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.seed("u", peer("a"), peer("b"))
	ev := onStandardQueue(t, sqsEvent(t,
		sqsRecord{"m-bad", body("u", "a", 1), "tenant-1"},
		sqsRecord{"m-a", body("u", "a", 0), "tenant-1"},
		sqsRecord{"m-b", body("u", "b", 0), "tenant-1"},
	))
	out, err := hs.invoke(ev, 10*time.Second)
	if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"m-bad"}) {
		t.Fatalf("batchItemFailures = %v, want only the invalid record (a standard queue orders nothing)", got)
	}
	if left := hs.srv.Conversations(testAppID, "u"); len(left) != 0 {
		t.Errorf("left %v: the valid records of the group were not attempted", left)
	}
}
