package handler

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPIGatewayRouting(t *testing.T) {
	t.Parallel()
	ok := body("alice", "bob", 0)
	tests := []struct {
		name   string
		ev     httpEvent
		status int
		code   string
		allow  bool
	}{
		{"other path", httpEvent{method: "POST", path: "/conversations", body: ok}, http.StatusNotFound, "NotFound", false},
		{"GET on the route", httpEvent{method: "GET", path: "/conversations/delete"}, http.StatusMethodNotAllowed, "MethodNotAllowed", true},
		{"DELETE on the route", httpEvent{method: "DELETE", path: "/conversations/delete", body: ok}, http.StatusMethodNotAllowed, "MethodNotAllowed", true},
		{"body over 16 KiB", httpEvent{method: "POST", path: "/conversations/delete", body: `{"FromUserId":"` + strings.Repeat("a", 16<<10) + `"}`}, http.StatusRequestEntityTooLarge, "PayloadTooLarge", false},
		{"base64 body over 16 KiB", httpEvent{method: "POST", path: "/conversations/delete", body: b64(strings.Repeat(" ", 16<<10+1)), b64: true}, http.StatusRequestEntityTooLarge, "PayloadTooLarge", false},
		{"bad base64", httpEvent{method: "POST", path: "/conversations/delete", body: "%%%", b64: true}, http.StatusBadRequest, "InvalidRequest", false},
		{"empty body", httpEvent{method: "POST", path: "/conversations/delete"}, http.StatusBadRequest, "InvalidRequest", false},
		{"trailing data", httpEvent{method: "POST", path: "/conversations/delete", body: ok + ok}, http.StatusBadRequest, "InvalidRequest", false},
	}
	for _, tt := range tests {
		for _, trig := range []string{"http_api", "rest_api"} {
			t.Run(trig+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				hs := newHarness(t)
				a := hs.invokeHTTP(trig, tt.ev)
				e, _ := a.body["error"].(map[string]any)
				if a.status != tt.status || e == nil || e["code"] != tt.code {
					t.Fatalf("got %d %v, want %d with code %s", a.status, a.body, tt.status, tt.code)
				}
				if got := a.headers["Allow"]; tt.allow != (got == "POST") {
					t.Errorf("Allow header = %q", got)
				}
				if n := len(hs.srv.Requests()); n != 0 {
					t.Errorf("%d requests reached ZEGO", n)
				}
			})
		}
	}
}

func (hs *harness) invokeHTTP(trig string, e httpEvent) apiAnswer {
	hs.t.Helper()
	if trig == "http_api" {
		out, err := hs.invoke(httpAPIEvent(hs.t, e), 5*time.Second)
		return decodeHTTPAPI(hs.t, out, err)
	}
	out, err := hs.invoke(restEvent(hs.t, e), 5*time.Second)
	return decodeREST(hs.t, out, err)
}

func TestAPIGatewayNamedStagePath(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.seed("alice", peer("bob"))
	ev := httpAPIEvent(t, httpEvent{method: "POST", path: "/prod/conversations/delete", body: body("alice", "bob", 0)})
	ev = []byte(strings.Replace(string(ev), `"stage":"$default"`, `"stage":"prod"`, 1))
	out, err := hs.invoke(ev, 5*time.Second)
	if a := decodeHTTPAPI(t, out, err); a.status != http.StatusOK {
		t.Fatalf("named stage: got %d %v", a.status, a.body)
	}
}

func TestJWTModeCallerMayOnlyDeleteOwnConversations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims map[string]string
		status int
	}{
		{"own conversation", map[string]string{"sub": "alice", "iss": "https://issuer.example"}, http.StatusOK},
		{"someone else's", map[string]string{"sub": "mallory"}, http.StatusForbidden},
		{"claim missing", map[string]string{"email": "alice@example.com"}, http.StatusForbidden},
		{"no authorizer", nil, http.StatusForbidden},
	}
	for _, tt := range tests {
		for _, trig := range []string{"http_api", "rest_api"} {
			t.Run(trig+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				hs := newHarness(t, withCallerClaim("sub"))
				hs.seed("alice", peer("bob"))
				a := hs.invokeHTTP(trig, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0), claims: tt.claims})
				if a.status != tt.status {
					t.Fatalf("got %d %v, want %d", a.status, a.body, tt.status)
				}
				left := len(hs.srv.Conversations(testAppID, "alice"))
				if tt.status == http.StatusForbidden {
					if e, _ := a.body["error"].(map[string]any); e["code"] != "Forbidden" {
						t.Errorf("error %v, want code Forbidden", a.body)
					}
					if left != 1 || len(hs.srv.Requests()) != 0 {
						t.Errorf("a forbidden request reached ZEGO")
					}
				} else if left != 0 {
					t.Errorf("conversation not deleted")
				}
			})
		}
	}
}

func TestJWTModeOffIgnoresClaims(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.seed("alice", peer("bob"))
	a := hs.invokeHTTP("http_api", httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0), claims: map[string]string{"sub": "mallory"}})
	if a.status != http.StatusOK {
		t.Fatalf("IAM mode: got %d %v", a.status, a.body)
	}
}

// FuzzAPIGatewayBody feeds arbitrary bodies, plain and base64, through both
// payload formats: every one gets a JSON answer with a contract status, never a
// panic or a function error.
func FuzzAPIGatewayBody(f *testing.F) {
	for _, s := range []string{
		`{"FromUserId":"alice","ConvId":"bob","ConvType":0}`,
		`{"FromUserId":"alice","AllConversations":true}`,
		`{"FromUserId":"a","ConvId":"b","ConvType":0}{}`, `{`, ``, `null`, "\xff\xfe",
	} {
		f.Add(s, false)
		f.Add(b64(s), true)
	}
	f.Add("%%%", true)
	f.Fuzz(func(t *testing.T, body string, isB64 bool) {
		h := &Handler{log: discardLogger(), jobWorkers: 1, sqsWorkers: 1, setupErr: errFuzzNoNetwork}
		for _, trig := range []string{"http_api", "rest_api"} {
			e := httpEvent{method: "POST", path: "/conversations/delete", body: body, b64: isB64}
			var payload []byte
			if trig == "http_api" {
				payload = httpAPIEvent(t, e)
			} else {
				payload = restEvent(t, e)
			}
			out, err := h.Invoke(t.Context(), payload)
			var a apiAnswer
			if trig == "http_api" {
				a = decodeHTTPAPI(t, out, err)
			} else {
				a = decodeREST(t, out, err)
			}
			switch a.status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusInternalServerError:
			default:
				t.Fatalf("%s: status %d for body %q", trig, a.status, body)
			}
		}
	})
}
