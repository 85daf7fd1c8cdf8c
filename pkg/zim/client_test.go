package zim

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDeleteConversationRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      DeleteConvRequest
		wantBody string
	}{
		{"peer", testReq, `{"FromUserId":"alice","ConvId":"bob","ConvType":0}`},
		{"group id with query characters", DeleteConvRequest{"u&1", "#g?a=b+c", ConvTypeGroup}, `{"FromUserId":"u\u00261","ConvId":"#g?a=b+c","ConvType":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(answer{body: `{"Code":0,"Message":"success","RequestId":"343649807833778782"}`})
			c := newTestClient(t, serve(t, fake), WithClock(func() time.Time { return fixedNow }),
				WithNonceSource(bytes.NewReader([]byte{0x4f, 0xd2, 0x46, 0x87, 0x29, 0x6d, 0xd9, 0xf3})))

			resp, err := c.DeleteConversation(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("DeleteConversation: %v", err)
			}
			if resp.Code != 0 || resp.Message != "success" || resp.RequestID != "343649807833778782" ||
				resp.Attempts != 1 || resp.HTTPStatus != 200 || resp.Latency <= 0 {
				t.Errorf("resp = %+v", resp)
			}

			reqs := fake.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.path != testPrefix+"/" || r.ctype != "application/json" {
				t.Errorf("path %q, Content-Type %q", r.path, r.ctype)
			}
			var gotBody, wantBody any
			json.Unmarshal([]byte(r.body), &gotBody)
			json.Unmarshal([]byte(tt.wantBody), &wantBody)
			if !jsonEqual(gotBody, wantBody) {
				t.Errorf("body = %s, want %s", r.body, tt.wantBody)
			}
			ts := strconv.FormatInt(fixedNow.Unix(), 10)
			want := url.Values{
				"Action":           {"DeleteConv"},
				"AppId":            {"1234567890"},
				"SignatureNonce":   {"4fd24687296dd9f3"},
				"Timestamp":        {ts},
				"SignatureVersion": {"2.0"},
				"Signature":        {Sign(testAppID, "4fd24687296dd9f3", testSecret, fixedNow.Unix())},
			}
			if r.query.Encode() != want.Encode() {
				t.Errorf("query = %s\nwant    %s", r.query.Encode(), want.Encode())
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return a != nil && bytes.Equal(x, y)
}

func TestBaseURLPathPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, suffix, wantPath string
	}{
		{"no path", "", "/"},
		{"root path", "/", "/"},
		{"prefix", "/prefix", "/prefix/"},
		{"prefix with slash", "/prefix/", "/prefix/"},
		{"nested prefix", "/a/b", "/a/b/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var gotPath, gotAction string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				gotPath, gotAction = r.URL.Path, r.URL.Query().Get("Action")
				mu.Unlock()
				w.Write([]byte(`{"Code":0}`))
			}))
			t.Cleanup(srv.Close)
			c := newTestClient(t, srv.URL+tt.suffix)
			if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if gotPath != tt.wantPath || gotAction != "DeleteConv" {
				t.Errorf("posted to %q with Action %q, want %q and DeleteConv", gotPath, gotAction, tt.wantPath)
			}
		})
	}
}

func TestInvalidRequestSendsNothing(t *testing.T) {
	t.Parallel()
	fake := newFake()
	c := newTestClient(t, serve(t, fake))
	resp, err := c.DeleteConversation(t.Context(), DeleteConvRequest{FromUserID: "alice", ConvID: "", ConvType: ConvTypePeer})
	wantValidation(t, err, "ConvId", "must not be empty")
	if resp != nil || len(fake.requests()) != 0 {
		t.Errorf("resp = %+v, %d requests; want nil and none", resp, len(fake.requests()))
	}
}

func TestNonEnvelopeAnswers(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1000)
	huge := `{"Code":0,"Message":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	tests := []struct {
		name        string
		answer      answer
		wantSnippet string
		wantRetry   bool
	}{
		{"HTML 502", answer{status: 502, body: "<html>bad gateway</html>"}, "<html>bad gateway</html>", true},
		{"HTTP 503 empty", answer{status: 503}, "", true},
		{"HTTP 429 text", answer{status: 429, body: "slow down"}, "slow down", true},
		{"HTTP 200 text", answer{body: "not json"}, "not json", false},
		{"HTTP 404 text", answer{status: 404, body: "404 page not found\n"}, "404 page not found\n", false},
		{"JSON without Code", answer{body: `{"Message":"ok"}`}, `{"Message":"ok"}`, false},
		{"Code as a string", answer{body: `{"Code":"0"}`}, `{"Code":"0"}`, false},
		{"JSON array", answer{body: `[1,2]`}, `[1,2]`, false},
		{"long body", answer{body: long}, long[:256], false},
		{"over 1 MiB", answer{body: huge}, huge[:256], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(tt.answer)
			c := newTestClient(t, serve(t, fake))
			resp, err := c.DeleteConversation(t.Context(), testReq)
			var re *ResponseError
			if !errors.As(err, &re) || !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want *ResponseError", err)
			}
			status := tt.answer.status
			if status == 0 {
				status = 200
			}
			if re.HTTPStatus != status || re.Snippet != tt.wantSnippet || re.Action != "DeleteConv" {
				t.Errorf("ResponseError{%s, %d, %q}, want {DeleteConv, %d, %q}", re.Action, re.HTTPStatus, re.Snippet, status, tt.wantSnippet)
			}
			if Retryable(err) != tt.wantRetry {
				t.Errorf("Retryable = %v, want %v", !tt.wantRetry, tt.wantRetry)
			}
			wantAttempts := 1
			if tt.wantRetry {
				wantAttempts = noWait.MaxAttempts
			}
			if resp == nil || resp.Attempts != wantAttempts || resp.HTTPStatus != status || len(fake.requests()) != wantAttempts {
				t.Errorf("resp = %+v with %d requests, want %d attempts", resp, len(fake.requests()), wantAttempts)
			}
		})
	}
}

// TestEnvelopeDecidesNotStatus: ZEGO's Code judges an answer, whatever the HTTP status.
func TestEnvelopeDecidesNotStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   answer
		wantCode int
	}{
		{"success on HTTP 500", answer{status: 500, body: `{"Code":0,"Message":"success","RequestId":"r"}`}, 0},
		{"invalid parameter on HTTP 500", answer{status: 500, body: `{"Code":660000002,"Message":"bad","RequestId":"r"}`}, 660000002},
		{"invalid parameter on HTTP 400", answer{status: 400, body: `{"Code":660000002,"Message":"bad","RequestId":"r"}`}, 660000002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, serve(t, newFake(tt.answer)))
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if resp == nil || resp.Code != tt.wantCode || resp.Attempts != 1 || resp.HTTPStatus != tt.answer.status {
				t.Fatalf("resp = %+v, err = %v", resp, err)
			}
			var ae *APIError
			if tt.wantCode == 0 && err != nil || tt.wantCode != 0 && (!errors.As(err, &ae) || ae.HTTPStatus != tt.answer.status) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		base func(t *testing.T) string
	}{
		{"connection dropped", func(t *testing.T) string { return serve(t, newFake(answer{hijack: true})) }},
		{"connection refused", func(*testing.T) string { return closed.URL + testPrefix }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newTestClient(t, tt.base(t), WithLogger(logger))
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if !errors.Is(err, ErrTransport) || !Retryable(err) {
				t.Fatalf("err = %v, want a retryable ErrTransport", err)
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("the *url.Error is not reachable from %v", err)
			}
			if resp == nil || resp.Attempts != noWait.MaxAttempts || resp.HTTPStatus != 0 {
				t.Errorf("resp = %+v", resp)
			}
			for _, leak := range []string{"Signature", "SignatureNonce", testSecret} {
				if strings.Contains(err.Error(), leak) || strings.Contains(logs.String(), leak) {
					t.Errorf("%q leaked into the error or the log:\n%v\n%s", leak, err, logs.String())
				}
			}
		})
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	fake := newFake(code(1), answer{status: 502, body: "bad gateway"}, code(0))
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestClient(t, serve(t, fake), WithLogger(logger))
	if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
		t.Fatal(err)
	}

	var attempts, retries int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec["msg"] {
		case "zim: attempt":
			attempts++
			for _, k := range []string{"action", "attempt", "code", "request_id", "http_status", "latency"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("attempt line lacks %q: %s", k, line)
				}
			}
			if rec["level"] != "DEBUG" {
				t.Errorf("attempt line at %v", rec["level"])
			}
		case "zim: retrying":
			retries++
			if rec["level"] != "WARN" {
				t.Errorf("retry line at %v", rec["level"])
			}
		}
	}
	if attempts != 3 || retries != 2 {
		t.Errorf("%d attempt lines and %d retry lines, want 3 and 2:\n%s", attempts, retries, logs.String())
	}
	leaks := []string{testSecret, "Signature"}
	for _, r := range fake.requests() {
		leaks = append(leaks, r.query.Get("Signature"), r.query.Get("SignatureNonce"))
	}
	for _, leak := range leaks {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("log contains %q", leak)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	fake := newFake()
	c := newTestClient(t, serve(t, fake))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := c.DeleteConversation(t.Context(), DeleteConvRequest{FromUserID: "alice", ConvID: "c" + strconv.Itoa(i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	nonces := map[string]bool{}
	valid := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, r := range fake.requests() {
		n := r.query.Get("SignatureNonce")
		if !valid.MatchString(n) || nonces[n] {
			t.Errorf("nonce %q malformed or reused", n)
		}
		nonces[n] = true
	}
	if len(nonces) != 20 {
		t.Errorf("%d distinct nonces, want 20", len(nonces))
	}
}
