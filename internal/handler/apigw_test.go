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

// editEvent is the sample with edit applied to the event and its requestContext.
func editEvent(t *testing.T, name string, edit func(ev, rc map[string]any)) []byte {
	t.Helper()
	ev := sample(t, name)
	edit(ev, ev["requestContext"].(map[string]any))
	return mustJSON(t, ev)
}

// httpV2 is events/apigw-http.json as API Gateway sends it for routeKey with
// rawPath on stage; method is the request's own.
func httpV2(t *testing.T, routeKey, method, rawPath, stage string, params map[string]string) []byte {
	return editEvent(t, "apigw-http.json", func(ev, rc map[string]any) {
		ev["routeKey"], rc["routeKey"], rc["stage"] = routeKey, routeKey, stage
		ev["rawPath"], rc["http"].(map[string]any)["path"] = rawPath, rawPath
		rc["http"].(map[string]any)["method"] = method
		if params != nil {
			ev["pathParameters"] = params
		}
		ev["body"] = body("alice", "bob", 0)
	})
}

// restV1 is events/apigw-rest.json for resource with path on stage.
func restV1(t *testing.T, resource, method, path, stage string, params map[string]string) []byte {
	return editEvent(t, "apigw-rest.json", func(ev, rc map[string]any) {
		ev["resource"], rc["resourcePath"] = resource, resource
		ev["httpMethod"], rc["httpMethod"] = method, method
		ev["path"], rc["stage"] = path, stage
		if params != nil {
			ev["pathParameters"] = params
		}
		ev["body"], ev["isBase64Encoded"] = body("alice", "bob", 0), false
	})
}

// customDomain moves an event to api.example.com.
func customDomain(t *testing.T, ev []byte) []byte {
	var m map[string]any
	mustUnmarshal(t, ev, &m)
	rc := m["requestContext"].(map[string]any)
	rc["domainName"], rc["domainPrefix"] = "api.example.com", "api"
	return mustJSON(t, m)
}

// TestAPIGatewayRoutesByRouteKeyAndResource: the route is what API Gateway
// matched (routeKey, resource), whatever the stage is called and whatever
// base path a custom domain maps; the path is only a fallback for a $default
// route and the greedy part of a {proxy+} one.
func TestAPIGatewayRoutesByRouteKeyAndResource(t *testing.T) {
	t.Parallel()
	const route = "/conversations/delete"
	proxy := func(p string) map[string]string { return map[string]string{"proxy": p} }
	tests := []struct {
		name   string
		v2     bool
		event  func(t *testing.T) []byte
		status int
	}{
		{"2.0 named stage in rawPath", true, func(t *testing.T) []byte {
			return httpV2(t, "POST "+route, "POST", "/prod"+route, "prod", nil)
		}, http.StatusOK},
		{"2.0 stage named like the route's first segment", true, func(t *testing.T) []byte {
			return httpV2(t, "POST "+route, "POST", "/conversations"+route, "conversations", nil)
		}, http.StatusOK},
		{"2.0 custom domain: rawPath holds neither the mapping key nor the stage", true, func(t *testing.T) []byte {
			return customDomain(t, httpV2(t, "POST "+route, "POST", route, "conversations", nil))
		}, http.StatusOK},
		{"2.0 custom domain: rawPath holds the mapping key", true, func(t *testing.T) []byte {
			return customDomain(t, httpV2(t, "POST "+route, "POST", "/zim"+route, "conversations", nil))
		}, http.StatusOK},
		{"2.0 ANY route, POST", true, func(t *testing.T) []byte {
			return httpV2(t, "ANY "+route, "POST", route, "$default", nil)
		}, http.StatusOK},
		{"2.0 ANY route, GET", true, func(t *testing.T) []byte {
			return httpV2(t, "ANY "+route, "GET", route, "$default", nil)
		}, http.StatusMethodNotAllowed},
		{"2.0 another route", true, func(t *testing.T) []byte {
			return httpV2(t, "POST /conversations", "POST", "/conversations", "$default", nil)
		}, http.StatusNotFound},
		{"2.0 greedy route", true, func(t *testing.T) []byte {
			return httpV2(t, "ANY /{proxy+}", "POST", "/prod"+route, "prod", proxy("conversations/delete"))
		}, http.StatusOK},
		{"2.0 greedy route, stage named like a segment, custom domain", true, func(t *testing.T) []byte {
			return customDomain(t, httpV2(t, "ANY /{proxy+}", "POST", route, "conversations", proxy("conversations/delete")))
		}, http.StatusOK},
		{"2.0 greedy route under the route's parent", true, func(t *testing.T) []byte {
			return httpV2(t, "POST /conversations/{proxy+}", "POST", route, "$default", proxy("delete"))
		}, http.StatusOK},
		{"2.0 greedy route, GET", true, func(t *testing.T) []byte {
			return httpV2(t, "ANY /{proxy+}", "GET", route, "$default", proxy("conversations/delete"))
		}, http.StatusMethodNotAllowed},
		{"2.0 greedy route, another path", true, func(t *testing.T) []byte {
			return httpV2(t, "ANY /{proxy+}", "POST", "/conversations/list", "$default", proxy("conversations/list"))
		}, http.StatusNotFound},
		{"2.0 $default route", true, func(t *testing.T) []byte {
			return httpV2(t, "$default", "POST", route, "$default", nil)
		}, http.StatusOK},
		{"2.0 $default route, named stage in rawPath", true, func(t *testing.T) []byte {
			return httpV2(t, "$default", "POST", "/prod"+route, "prod", nil)
		}, http.StatusOK},
		{"2.0 $default route, another path", true, func(t *testing.T) []byte {
			return httpV2(t, "$default", "POST", "/health", "$default", nil)
		}, http.StatusNotFound},
		{"1.0 stage named like the route's first segment", false, func(t *testing.T) []byte {
			return restV1(t, route, "POST", route, "conversations", nil)
		}, http.StatusOK},
		{"1.0 custom domain with a base path", false, func(t *testing.T) []byte {
			return customDomain(t, restV1(t, route, "POST", "/zim"+route, "conversations", nil))
		}, http.StatusOK},
		{"1.0 proxy resource behind a base path", false, func(t *testing.T) []byte {
			return customDomain(t, restV1(t, "/{proxy+}", "POST", "/zim"+route, "prod", proxy("conversations/delete")))
		}, http.StatusOK},
		{"1.0 proxy resource, another path", false, func(t *testing.T) []byte {
			return restV1(t, "/{proxy+}", "POST", "/conversations", "prod", proxy("conversations"))
		}, http.StatusNotFound},
		{"1.0 GET on the route's resource", false, func(t *testing.T) []byte {
			return restV1(t, route, "GET", route, "prod", nil)
		}, http.StatusMethodNotAllowed},
		{"1.0 another resource", false, func(t *testing.T) []byte {
			return restV1(t, "/conversations", "POST", "/conversations", "prod", nil)
		}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := newHarness(t)
			hs.seed("alice", peer("bob"))
			out, err := hs.invoke(tt.event(t), 5*time.Second)
			var a apiAnswer
			if tt.v2 {
				a = decodeHTTPAPI(t, out, err)
			} else {
				a = decodeREST(t, out, err)
			}
			if a.status != tt.status {
				t.Fatalf("got %d %v, want %d", a.status, a.body, tt.status)
			}
			deleted := len(hs.srv.Conversations(testAppID, "alice")) == 0
			if deleted != (tt.status == http.StatusOK) {
				t.Errorf("status %d, yet the conversation deleted: %v", a.status, deleted)
			}
			if got := a.headers["Allow"]; (tt.status == http.StatusMethodNotAllowed) != (got == "POST") {
				t.Errorf("Allow header = %q on %d", got, a.status)
			}
		})
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
