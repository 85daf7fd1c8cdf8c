package handler

import (
	"encoding/json"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

func TestSampleEventsEveryTrigger(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.seed("alice", peer("bob"), group("#team-7"))
	hs.seed("carol", peer("alice"))
	hs.seed("frank", peer("grace"), group("#ops-2"))
	for _, name := range []string{"direct.json", "apigw-http.json", "apigw-rest.json", "apigw-http-custom-domain.json", "apigw-rest-custom-domain.json"} {
		payload, err := os.ReadFile("../../events/" + name)
		if err != nil {
			t.Fatal(err)
		}
		out, err := hs.invoke(payload, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name != "direct.json" {
			var r struct {
				StatusCode int `json:"statusCode"`
			}
			mustUnmarshal(t, out, &r)
			if r.StatusCode != 200 {
				t.Errorf("%s: status %d: %s", name, r.StatusCode, out)
			}
		}
	}
	if n := len(hs.srv.Conversations(testAppID, "alice")) + len(hs.srv.Conversations(testAppID, "carol")) + len(hs.srv.Conversations(testAppID, "frank")); n != 0 {
		t.Errorf("%d conversations left", n)
	}
}

func TestUnsupportedEvents(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, payload, want string }{
		{"S3 event", `{"Records":[{"eventSource":"aws:s3","s3":{}}]}`, "unsupported event"},
		{"empty object", `{}`, "unsupported event"},
		{"JSON string", `"delete please"`, "request must be a JSON object"},
		{"not JSON", `FromUserId=alice`, "request must be a JSON object"},
		{"array", `[{"FromUserId":"a","ConvId":"b","ConvType":0}]`, "request must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := newHarness(t)
			_, err := hs.invoke([]byte(tt.payload), time.Second)
			ie := functionError(t, err)
			if ie.Type != "InvalidRequest" || !strings.Contains(ie.Message, tt.want) {
				t.Fatalf("got %+v, want InvalidRequest containing %q", ie, tt.want)
			}
		})
	}
}

func TestPanicBecomesAClearError(t *testing.T) {
	t.Parallel()
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		hs := newHarness(t)
		hs.h.zim = panicZIM{}
		_, err := hs.invoke([]byte(body("alice", "bob", 0)), time.Second)
		ie := functionError(t, err)
		if ie.Type != "InternalError" || len(ie.StackTrace) != 0 || strings.Contains(ie.Message, "goroutine") {
			t.Fatalf("got %+v", ie)
		}
		if !strings.Contains(hs.logs.String(), "panic while handling an event") {
			t.Errorf("the panic was not logged")
		}
	})
	t.Run("sqs worker", func(t *testing.T) {
		t.Parallel()
		hs := newHarness(t)
		hs.h.zim = panicZIM{}
		out, err := hs.invoke(sqsEvent(t, sqsRecord{id: "m-1", body: body("alice", "bob", 0)}, sqsRecord{id: "m-2", body: allBody}), time.Second)
		if got := decodeSQS(t, out, err); !slices.Equal(got, []string{"m-1", "m-2"}) {
			t.Fatalf("batchItemFailures = %v", got)
		}
	})
	t.Run("job worker", func(t *testing.T) {
		t.Parallel()
		hs := newHarness(t)
		seedMany(hs, 3)
		hs.h.zim = panicOnDelete{hs.h.zim}
		a := hs.invokeHTTP("http_api", httpEvent{method: "POST", path: "/conversations/delete", body: allBody})
		e, _ := a.body["error"].(map[string]any)
		if a.status != 500 || e["code"] != "InternalError" {
			t.Fatalf("got %d %v", a.status, a.body)
		}
		// A 5xx body is generic; the job's account of it is in the log.
		if l := hs.outcomeLines(); len(l) != 1 || !strings.Contains(l[0]["error"].(string), "3 of FromUserId's conversations could not be deleted") {
			t.Errorf("outcome lines %v, want the job's failures", l)
		}
	})
}

func TestEMFMetricLines(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.seed("u", peer("a"), peer("b"))
	_, err := hs.invoke(sqsEvent(t,
		sqsRecord{id: "1", body: body("u", "a", 0)},
		sqsRecord{id: "2", body: body("u", "b", 0)},
		sqsRecord{id: "3", body: body("u", "gone", 0)},
		sqsRecord{id: "4", body: "nope"},
	), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, l := range hs.emf.lines(t) {
		meta := l["_aws"].(map[string]any)
		cw := meta["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if cw["Namespace"] != outcome.MetricsNamespace || meta["Timestamp"] == nil {
			t.Errorf("bad EMF metadata %v", meta)
		}
		got[l["Outcome"].(string)] = l["Requests"].(float64)
		if l["Outcome"] == "deleted" && len(l["ZegoLatency"].([]any)) != 2 {
			t.Errorf("want two latency values for deleted, got %v", l["ZegoLatency"])
		}
	}
	want := map[string]float64{"deleted": 2, "already_deleted": 1, "invalid_request": 1}
	if len(got) != len(want) {
		t.Fatalf("EMF counts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("EMF %s = %v, want %v", k, got[k], v)
		}
	}
}
