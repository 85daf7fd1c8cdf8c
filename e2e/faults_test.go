package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestZEGOTemporaryErrorIsRetried(t *testing.T) {
	s := shared(t)
	w := newWorld(t, s)
	w.seed("uma", peer("e2e-retry"))
	w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "e2e-retry", Code: 1}) // "system error, retry"

	got := directSuccess(t, invoke(t, s, direct("uma", "e2e-retry", 0)))
	if got.Outcome != "deleted" || got.Code != 0 {
		t.Errorf("answer %+v, want deleted after a retry", got)
	}
	reqs := w.deletes()
	if len(reqs) != 2 || reqs[0].Code != 1 || reqs[0].Fault == "" || reqs[1].Code != 0 || reqs[1].RequestID != got.RequestID {
		t.Errorf("ZIM server saw %v, want Code 1 (the fault) then Code 0", reqs)
	}
	if reqs[0].Nonce == reqs[1].Nonce {
		t.Error("the retry reused the first attempt's nonce")
	}
	if w.has("uma", peer("e2e-retry")) {
		t.Error("the conversation is still stored")
	}
}

func TestZEGOPermanentErrorIsUpstreamError(t *testing.T) {
	s := shared(t)
	w := newWorld(t, s)
	w.seed("uma", peer("e2e-permanent"))
	const code = 123456 // no class of its own: an unexpected code
	w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "e2e-permanent", Code: code, Times: 2})

	res := invoke(t, s, direct("uma", "e2e-permanent", 0))
	reqs := w.deletes()
	if len(reqs) != 1 {
		t.Fatalf("ZIM server saw %v, want one request (a permanent code is not retried)", reqs)
	}
	if !res.FunctionError || res.ErrorType != "UpstreamError" || !strings.Contains(res.ErrorMessage, "123456") || !strings.Contains(res.ErrorMessage, reqs[0].RequestID) {
		t.Errorf("direct: %s, want an UpstreamError naming code %d and RequestId %s", res.Body, code, reqs[0].RequestID)
	}

	resp := apiAnswer(t, invoke(t, s, httpAPI(t, direct("uma", "e2e-permanent", 0))))
	var e apiError
	if err := json.Unmarshal([]byte(resp.Body), &e); err != nil {
		t.Fatal(err)
	}
	reqs = w.deletes()
	if resp.StatusCode != http.StatusBadGateway || e.Error.Code != "UpstreamError" || e.Error.ZegoCode != code || len(reqs) != 2 || e.Error.RequestID != reqs[1].RequestID {
		t.Errorf("HTTP API: %d %s, want 502 UpstreamError with zegoCode %d and the ZIM server's RequestId (saw %v)", resp.StatusCode, resp.Body, code, reqs)
	}
	if !w.has("uma", peer("e2e-permanent")) {
		t.Error("the conversation is gone, yet ZEGO never accepted the deletion")
	}
}

func TestZEGOHTTP5xx(t *testing.T) {
	s := shared(t)

	t.Run("once, then success", func(t *testing.T) {
		w := newWorld(t, s)
		w.seed("uma", peer("e2e-500-once"))
		w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "e2e-500-once", HTTPStatus: http.StatusInternalServerError})
		got := directSuccess(t, invoke(t, s, direct("uma", "e2e-500-once", 0)))
		reqs := w.deletes()
		if got.Outcome != "deleted" || len(reqs) != 2 || reqs[0].HTTPStatus != 500 || reqs[1].Code != 0 {
			t.Errorf("answer %+v after %v, want deleted on the second attempt", got, reqs)
		}
	})

	t.Run("every attempt", func(t *testing.T) {
		w := newWorld(t, s)
		w.seed("uma", peer("e2e-503"))
		w.inject(zimtest.Fault{Action: "DeleteConv", ConvID: "e2e-503", HTTPStatus: http.StatusServiceUnavailable, Times: 100})
		resp := apiAnswer(t, invoke(t, s, httpAPI(t, direct("uma", "e2e-503", 0))))
		reqs := w.deletes()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Body, `"UpstreamError"`) {
			t.Errorf("HTTP API: %d %s, want 502 UpstreamError after retries", resp.StatusCode, resp.Body)
		}
		if len(reqs) < 2 {
			t.Errorf("ZIM server saw %v, want the 503 retried", reqs)
		}
		for _, r := range reqs {
			if r.HTTPStatus != http.StatusServiceUnavailable {
				t.Errorf("ZIM server answered %v, want the fault's 503", r)
			}
		}
		if !w.has("uma", peer("e2e-503")) {
			t.Error("the conversation is gone")
		}
	})
}
