package zimtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestHandSignMatchesZEGOVector(t *testing.T) {
	t.Parallel()
	// ZEGO's published example.
	if got, want := handSign(12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943), "43e5cfcca828314675f91b001390566a"; got != want {
		t.Fatalf("handSign = %s, want %s", got, want)
	}
}

var requestIDPattern = regexp.MustCompile(`^[1-9][0-9]{17}$`)

func TestCommonParameters(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithClock(fixed(t0)), zimtest.WithRateLimit(0, 0))
	s.Seed(appA, "alice")

	// resign recomputes the signature after a mutation, so that only the
	// mutated parameter is wrong.
	resign := func(q url.Values, secret string) {
		id, _ := strconv.ParseUint(q.Get("AppId"), 10, 32)
		ts, _ := strconv.ParseInt(q.Get("Timestamp"), 10, 64)
		q.Set("Signature", handSign(uint32(id), q.Get("SignatureNonce"), secret, ts))
	}
	at := func(d time.Duration) func(url.Values) {
		return func(q url.Values) {
			q.Set("Timestamp", strconv.FormatInt(t0.Add(d).Unix(), 10))
			resign(q, secretA)
		}
	}
	tests := []struct {
		name      string
		mutate    func(url.Values)
		wantCode  int
		wantValid bool // Request.SignatureValid in the log
	}{
		{"valid", func(url.Values) {}, 0, true},
		{"AppId missing", func(q url.Values) { q.Del("AppId") }, 100000001, false},
		{"AppId not a number", func(q url.Values) { q.Set("AppId", "app") }, 100000001, false},
		{"AppId zero", func(q url.Values) { q.Set("AppId", "0") }, 100000001, false},
		{"AppId over 32 bits", func(q url.Values) { q.Set("AppId", "4294967296") }, 100000001, false},
		{"AppId negative", func(q url.Values) { q.Set("AppId", "-1") }, 100000001, false},
		{"Action missing", func(q url.Values) { q.Del("Action") }, 100000006, true},
		{"Action unknown", func(q url.Values) { q.Set("Action", "DeleteConversation") }, 100000007, true},
		{"Action wrong case", func(q url.Values) { q.Set("Action", "queryconversationlist") }, 100000007, true},
		{"Timestamp missing", func(q url.Values) { q.Del("Timestamp") }, 100000002, false},
		{"Timestamp not an integer", func(q url.Values) { q.Set("Timestamp", "1741435200.5") }, 100000003, false},
		{"Timestamp in milliseconds", func(q url.Values) {
			q.Set("Timestamp", strconv.FormatInt(t0.UnixMilli(), 10))
			resign(q, secretA)
		}, 100000004, true},
		{"SignatureNonce missing", func(q url.Values) { q.Del("SignatureNonce"); resign(q, secretA) }, 100000008, true},
		{"SignatureNonce 14 digits", func(q url.Values) { q.Set("SignatureNonce", "12345678901234"); resign(q, secretA) }, 100000008, true},
		{"SignatureNonce uppercase hex", func(q url.Values) { q.Set("SignatureNonce", "4FD24687296DD9F3"); resign(q, secretA) }, 100000008, true},
		{"SignatureNonce not hex", func(q url.Values) { q.Set("SignatureNonce", "4fd24687296dd9fg"); resign(q, secretA) }, 100000008, true},
		{"SignatureVersion missing", func(q url.Values) { q.Del("SignatureVersion") }, 100000013, true},
		{"SignatureVersion 1.0", func(q url.Values) { q.Set("SignatureVersion", "1.0") }, 100000014, true},
		{"SignatureVersion 2", func(q url.Values) { q.Set("SignatureVersion", "2") }, 100000014, true},
		{"Signature missing", func(q url.Values) { q.Del("Signature") }, 100000009, false},
		{"AppId unknown", func(q url.Values) { q.Set("AppId", "42"); resign(q, secretA) }, 100000011, false},
		{"Timestamp 601 s behind", at(-601 * time.Second), 100000004, true},
		{"Timestamp 601 s ahead", at(601 * time.Second), 100000004, true},
		{"Timestamp 600 s behind", at(-600 * time.Second), 0, true},
		{"Timestamp 600 s ahead", at(600 * time.Second), 0, true},
		{"Signature with another secret", func(q url.Values) { resign(q, secretB) }, 100000005, false},
		{"Signature in uppercase", func(q url.Values) { q.Set("Signature", strings.ToUpper(q.Get("Signature"))) }, 100000005, false},
		{"Signature of another nonce", func(q url.Values) { q.Set("SignatureNonce", freshNonce()) }, 100000005, false},
		{"Signature base64", func(q url.Values) { q.Set("Signature", "Q+XPzKgoMUZ1+RsAE5BWag==") }, 100000005, false},
		// Order: the first failing check decides.
		{"Action and Timestamp missing", func(q url.Values) { q.Del("Action"); q.Del("Timestamp") }, 100000006, false},
		{"unknown app and expired", func(q url.Values) {
			q.Set("AppId", "42")
			q.Set("Timestamp", strconv.FormatInt(t0.Add(-time.Hour).Unix(), 10))
		}, 100000011, false},
		{"expired and wrong signature", func(q url.Values) {
			q.Set("Timestamp", strconv.FormatInt(t0.Add(-time.Hour).Unix(), 10))
			resign(q, secretB)
		}, 100000004, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := query("QueryConversationList", appA, secretA, t0)
			tt.mutate(q)
			a := post(t, s.URL+"/", q, `{"FromUserId":"alice"}`)
			if a.Code != tt.wantCode {
				t.Errorf("Code = %d (%s), want %d", a.Code, a.Message, tt.wantCode)
			}
			if a.Status != http.StatusOK || a.ContentType != "application/json; charset=utf-8" {
				t.Errorf("HTTP %d %q, want 200 application/json", a.Status, a.ContentType)
			}
			if !requestIDPattern.MatchString(a.RequestID) {
				t.Errorf("RequestId %q is not an 18-digit decimal", a.RequestID)
			}
			if a.Message == "" {
				t.Error("Message is empty")
			}
			r := logged(t, s, a.RequestID)
			if r.Code != tt.wantCode || r.SignatureValid != tt.wantValid || r.HTTPStatus != http.StatusOK {
				t.Errorf("logged %v, want Code %d SignatureValid %t HTTP 200", r, tt.wantCode, tt.wantValid)
			}
		})
	}
}

func TestRequestIDsAreFresh(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(0, 0))
	seen := map[string]bool{}
	for range 50 {
		a := post(t, s.URL+"/", query("DeleteConv", appA, secretA, time.Now()), deleteBody("alice", "bob", 0))
		if seen[a.RequestID] {
			t.Fatalf("RequestId %s answered twice", a.RequestID)
		}
		seen[a.RequestID] = true
	}
}

func TestPathsAndMethods(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(0, 0))
	tests := []struct {
		method, path string
		wantStatus   int
		wantAllow    string
	}{
		{http.MethodPost, "/", http.StatusOK, ""},
		{http.MethodGet, "/", http.StatusOK, ""},
		{http.MethodPost, "/zim/prefix/", http.StatusOK, ""},
		{http.MethodPost, "/zim/prefix", http.StatusNotFound, ""},
		{http.MethodPost, "/DeleteConv", http.StatusNotFound, ""},
		{http.MethodPut, "/", http.StatusMethodNotAllowed, "GET, POST"},
		{http.MethodDelete, "/", http.StatusMethodNotAllowed, "GET, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			q := query("QueryConversationList", appA, secretA, time.Now())
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.URL+tt.path+"?"+q.Encode(), strings.NewReader(`{"FromUserId":"alice"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := testClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Allow") != tt.wantAllow {
				t.Fatalf("HTTP %d Allow %q, want %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"), tt.wantStatus, tt.wantAllow)
			}
			if tt.wantStatus == http.StatusOK {
				if a := decodeAnswer(t, resp.StatusCode, "", raw); a.Code != 0 {
					t.Fatalf("Code = %d (%s), want 0", a.Code, a.Message)
				}
			}
		})
	}
}

func TestGetWithoutBodyIsAnInvalidParameter(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA))
	q := query("DeleteConv", appA, secretA, time.Now())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if a := decodeAnswer(t, resp.StatusCode, "", raw); a.Code != 660000002 {
		t.Fatalf("Code = %d, want 660000002", a.Code)
	}
}

func TestBodyOverOneMiBAnswers100000012(t *testing.T) {
	t.Parallel()
	s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA))
	body := `{"FromUserId":"alice","Pad":"` + strings.Repeat("x", 1<<20) + `"}`
	a := serve(t, s, query("QueryConversationList", appA, secretA, time.Now()), body)
	if a.Code != 100000012 {
		t.Fatalf("Code = %d, want 100000012", a.Code)
	}
}

func TestSeveralAppsAndRotation(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithApp(appB, secretB), zimtest.WithRateLimit(0, 0))
	const (
		appC    uint32 = 555
		secretC        = "cccccccccccccccccccccccccccccccc"
		rotated        = "ffffffffffffffffffffffffffffffff"
	)
	check := func(t *testing.T, step string, appID uint32, secret string, want int) {
		t.Helper()
		a := post(t, s.URL+"/", query("QueryConversationList", appID, secret, time.Now()), `{"FromUserId":"alice"}`)
		if a.Code != want {
			t.Errorf("%s: AppId %d: Code = %d (%s), want %d", step, appID, a.Code, a.Message, want)
		}
	}
	check(t, "before", appA, secretA, 0)
	check(t, "before", appB, secretB, 0)
	check(t, "before", appA, secretB, 100000005)
	check(t, "before", appC, secretC, 100000011)

	s.SetSecret(appA, rotated)
	s.SetSecret(appC, secretC)
	check(t, "after", appA, secretA, 100000005)
	check(t, "after", appA, rotated, 0)
	check(t, "after", appB, secretB, 0)
	check(t, "after", appC, secretC, 0)
}

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	s := zimtest.NewServer()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want http://127.0.0.1:PORT", s.URL)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a second Start did not panic")
			}
		}()
		s.Start()
	}()
	s.Close()
	s.Close() // harmless
	if _, err := testClient.Get(s.URL + "/"); err == nil {
		t.Error("a closed server still answers")
	}

	// A server used as a plain handler needs no Start.
	h := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA))
	ts := httptest.NewServer(h)
	defer ts.Close()
	if a := post(t, ts.URL+"/", query("QueryConversationList", appA, secretA, time.Now()), `{"FromUserId":"alice"}`); a.Code != 0 {
		t.Errorf("as a handler: Code = %d, want 0", a.Code)
	}
}
