package zim

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

const (
	testAppID  uint32 = 1234567890
	testSecret        = "00112233445566778899aabbccddeeff"
	// testPrefix is where test servers mount the API, so that URL bugs show.
	testPrefix = "/zim"
)

// testCreds are the static credentials of most tests.
var testCreds = StaticCredentials{AppID: testAppID, ServerSecret: testSecret}

var testReq = DeleteConvRequest{FromUserID: "alice", ConvID: "bob", ConvType: ConvTypePeer}

// answer is one scripted reply of fakeZEGO.
type answer struct {
	status int    // HTTP status; 200 when 0
	body   string // raw body
	hijack bool   // drop the connection instead of answering
	block  bool   // wait until the request's context ends, then answer body
}

// code is the JSON envelope ZEGO sends for c.
func code(c int) answer {
	return answer{body: fmt.Sprintf(`{"Code":%d,"Message":"message %d","RequestId":"req-%d"}`, c, c, c)}
}

// seen is one request as fakeZEGO received it.
type seen struct {
	path  string
	query url.Values
	ctype string
	body  string
	at    time.Time
}

// fakeZEGO answers with a script (the last answer repeats) and records every
// request. It checks nothing itself: tests assert on what it recorded.
type fakeZEGO struct {
	mu      sync.Mutex
	script  []answer
	reqs    []seen
	respond func(r *http.Request, body string) answer // overrides script when set
}

func newFake(script ...answer) *fakeZEGO { return &fakeZEGO{script: script} }

func (f *fakeZEGO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{path: r.URL.Path, query: r.URL.Query(), ctype: r.Header.Get("Content-Type"), body: string(b), at: time.Now()})
	var a answer
	switch {
	case f.respond != nil:
		a = f.respond(r, string(b))
	case len(f.script) > 0:
		a = f.script[min(len(f.reqs), len(f.script))-1]
	default:
		a = code(0)
	}
	f.mu.Unlock()

	switch {
	case a.hijack:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case a.block:
		<-r.Context().Done()
	}
	w.Header().Set("Content-Type", "application/json")
	if a.status != 0 {
		w.WriteHeader(a.status)
	}
	io.WriteString(w, a.body)
}

func (f *fakeZEGO) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// serve mounts h under testPrefix on an httptest server and returns the base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(testPrefix+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + testPrefix
}

// inMemory is an http.RoundTripper that hands requests straight to a handler:
// no sockets, so it works inside testing/synctest bubbles.
type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, req)
	req.Body.Close()
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// noWait is a retry policy for tests that count attempts, not time.
var noWait = RetryPolicy{MaxAttempts: 3}

// newTestClient builds a client for base with static test credentials, no rate
// limit and no backoff, unless opts say otherwise.
func newTestClient(t *testing.T, base string, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithBaseURL(base), WithRateLimit(math.Inf(1)), WithRetry(noWait)}, opts...)
	c, err := New(testCreds, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// memClient builds a client whose requests go to h in memory, for synctest.
func memClient(t *testing.T, h http.Handler, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithBaseURL("https://zim-api.zego.im" + testPrefix), WithHTTPClient(&http.Client{Transport: inMemory{h}})}, opts...)
	c, err := New(testCreds, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
