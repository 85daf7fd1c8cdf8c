package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// TestSampleEvents runs every sample of events/ through the emulator, each
// against the ZIM server holding the conversations it names.
func TestSampleEvents(t *testing.T) {
	s := shared(t)

	t.Run("direct.json", func(t *testing.T) {
		w := newWorld(t, s)
		w.seed("alice", peer("bob"))
		got := directSuccess(t, invoke(t, s, sample(t, "direct.json")))
		if got.Outcome != "deleted" || got.Code != 0 || got.RequestID == "" {
			t.Errorf("answer %+v, want Outcome deleted, Code 0 and ZEGO's RequestId", got)
		}
		assertDeleted(t, w, got.RequestID, "alice", peer("bob"))
	})

	t.Run("direct.json again is already deleted", func(t *testing.T) {
		w := newWorld(t, s)
		w.seed("alice", peer("bob"))
		invoke(t, s, sample(t, "direct.json"))
		got := directSuccess(t, invoke(t, s, sample(t, "direct.json")))
		if got.Outcome != "already_deleted" || got.Code != 660800002 {
			t.Errorf("second answer %+v, want Outcome already_deleted with Code 660800002", got)
		}
		if reqs := w.deletes(); len(reqs) != 2 || reqs[1].Code != 660800002 || reqs[1].RequestID != got.RequestID {
			t.Errorf("ZIM server saw %v, want the second DeleteConv answered 660800002 with RequestId %q", reqs, got.RequestID)
		}
	})

	for _, tc := range []struct {
		file       string
		user       string
		conv       zim.Conversation
		wantRoutes string
	}{
		{"apigw-http.json", "alice", group("#team-7"), "HTTP API"},
		{"apigw-rest.json", "carol", peer("alice"), "REST API"}, // base64 body
	} {
		t.Run(tc.file, func(t *testing.T) {
			w := newWorld(t, s)
			w.seed(tc.user, tc.conv)
			event := sample(t, tc.file)
			if got := devstack.DetectTrigger(event); string(got) != tc.wantRoutes {
				t.Fatalf("%s is a %s event, want %s", tc.file, got, tc.wantRoutes)
			}
			resp := apiAnswer(t, invoke(t, s, event))
			var got success
			if err := strictJSON([]byte(resp.Body), &got); err != nil {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			if resp.StatusCode != http.StatusOK || got.Outcome != "deleted" || got.Code != 0 {
				t.Errorf("answer %d %s, want 200 with Outcome deleted and Code 0", resp.StatusCode, resp.Body)
			}
			assertDeleted(t, w, got.RequestID, tc.user, tc.conv)
		})
	}

	t.Run("sqs.json", func(t *testing.T) {
		w := newWorld(t, s)
		w.seed("dave", peer("alice"), peer("bob"))
		w.seed("carol", group("#team-7"))
		res := invoke(t, s, sample(t, "sqs.json"))
		const bad = "7d2e4b8a-6d1f-4c52-9a0e-3f7f1c9b2a11" // ConvType 1
		if got := batchFailures(t, res); !slices.Equal(got, []string{bad}) {
			t.Errorf("batchItemFailures %q, want exactly the invalid record %q", got, bad)
		}
		var seen []string
		for _, r := range w.deletes() {
			seen = append(seen, r.FromUserID+"/"+r.ConvID)
			if r.Code != 0 || !r.SignatureValid {
				t.Errorf("ZIM server answered %v, want Code 0 to a valid signature", r)
			}
		}
		slices.Sort(seen)
		if want := []string{"carol/#team-7", "dave/alice"}; !slices.Equal(seen, want) {
			t.Errorf("ZIM server saw DeleteConv for %q, want %q (the invalid record is never sent)", seen, want)
		}
		if w.has("dave", peer("alice")) || w.has("carol", group("#team-7")) {
			t.Error("the valid records' conversations are still stored")
		}
		if !w.has("dave", peer("bob")) {
			t.Error("dave/bob is gone, yet its record was invalid (ConvType 1)")
		}
		line := outcomeLine(res, "messageId", bad)
		if line == nil || line.String("outcome") != "invalid_request" || !strings.Contains(line.String("error"), "ConvType") {
			t.Errorf("log line for %s = %v, want outcome invalid_request naming ConvType", bad, line)
		}
	})

	t.Run("all-conversations.json", func(t *testing.T) {
		w := newWorld(t, s)
		w.seed("erin", peer("e2e-all-1"), group("#e2e-all-2"))
		before, err := w.admin.Conversations(t.Context(), w.app, "erin")
		if err != nil {
			t.Fatal(err)
		}
		res := invoke(t, s, sample(t, "all-conversations.json"))
		if res.FunctionError {
			t.Fatalf("function error %s: %s", res.ErrorType, res.ErrorMessage)
		}
		var got struct {
			FromUserID                      string `json:"FromUserId"`
			Outcome                         string
			Complete                        bool
			Deleted, AlreadyDeleted, Failed int
		}
		if err := json.Unmarshal(res.Body, &got); err != nil {
			t.Fatalf("answer %s: %v", res.Body, err)
		}
		if got.FromUserID != "erin" || got.Outcome != "deleted" || !got.Complete || got.Deleted != len(before) || got.Failed != 0 {
			t.Errorf("answer %s, want erin's %d conversations deleted, complete", res.Body, len(before))
		}
		if after, _ := w.admin.Conversations(t.Context(), w.app, "erin"); len(after) != 0 {
			t.Errorf("erin still has %v", after)
		}
		var deleted []string
		for _, r := range w.deletes() {
			if r.FromUserID != "erin" || r.Code != 0 {
				t.Errorf("ZIM server saw %v, want erin's deletions answered 0", r)
			}
			deleted = append(deleted, r.ConvID)
		}
		for _, c := range before {
			if !slices.Contains(deleted, c.ConvID) {
				t.Errorf("no DeleteConv for erin's %q", c.ConvID)
			}
		}
	})
}

// assertDeleted checks that the ZIM server saw exactly one DeleteConv, for
// user's conv, answered Code 0 with requestID, and that conv is gone.
func assertDeleted(t *testing.T, w *world, requestID, user string, conv zim.Conversation) {
	t.Helper()
	reqs := w.deletes()
	if len(reqs) != 1 {
		t.Fatalf("ZIM server saw %d DeleteConv requests, want 1: %v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.FromUserID != user || r.ConvID != conv.ConvID || r.ConvType != conv.ConvType || r.Code != 0 || !r.SignatureValid || r.AppID != w.app {
		t.Errorf("ZIM server saw %v, want DeleteConv of %s's %q (type %d) by app %d, answered 0", r, user, conv.ConvID, conv.ConvType, w.app)
	}
	if r.RequestID != requestID {
		t.Errorf("answer's RequestId %q, ZIM server's %q", requestID, r.RequestID)
	}
	if w.has(user, conv) {
		t.Errorf("%s's conversation %q is still stored", user, conv.ConvID)
	}
}

func TestInvalidRequestNeverReachesZEGO(t *testing.T) {
	s := shared(t)
	w := newWorld(t, s)
	event := direct("alice", "bob", 1)

	res := invoke(t, s, event)
	if !res.FunctionError || res.ErrorType != "InvalidRequest" || !strings.Contains(res.ErrorMessage, "ConvType") {
		t.Errorf("direct: %s, want an InvalidRequest function error naming ConvType", res.Body)
	}

	resp := apiAnswer(t, invoke(t, s, httpAPI(t, event)))
	var e apiError
	if err := json.Unmarshal([]byte(resp.Body), &e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || e.Error.Code != "InvalidRequest" || e.Error.Field != "ConvType" {
		t.Errorf("HTTP API: %d %s, want 400 InvalidRequest with field ConvType", resp.StatusCode, resp.Body)
	}
	if reqs := w.deletes(); len(reqs) != 0 {
		t.Errorf("ZIM server saw %v, want nothing", reqs)
	}
}
