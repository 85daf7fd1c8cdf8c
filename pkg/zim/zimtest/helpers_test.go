package zimtest_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// The app of dev/zim-seed.json, and a second one.
const (
	appA    uint32 = 1234567890
	secretA        = "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15"
	appB    uint32 = 987654321
	secretB        = "0123456789abcdef0123456789abcdef"
)

// t0 is the fixed time of servers built WithClock(fixed(t0)).
var t0 = time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// handSign computes a version 2.0 signature in the test itself, so that
// neither package zim nor zimtest's own signing is trusted by these tests.
func handSign(appID uint32, nonce, secret string, ts int64) string {
	sum := md5.Sum([]byte(fmt.Sprintf("%d%s%s%d", appID, nonce, secret, ts)))
	return hex.EncodeToString(sum[:])
}

var nonceCounter atomic.Uint64

// freshNonce returns a distinct 16-lowercase-hex nonce per call.
func freshNonce() string { return fmt.Sprintf("%016x", nonceCounter.Add(1)) }

// query returns the common parameters of a correctly signed request.
func query(action string, appID uint32, secret string, now time.Time) url.Values {
	nonce := freshNonce()
	ts := now.Unix()
	return url.Values{
		"Action":           {action},
		"AppId":            {strconv.FormatUint(uint64(appID), 10)},
		"SignatureNonce":   {nonce},
		"Timestamp":        {strconv.FormatInt(ts, 10)},
		"SignatureVersion": {"2.0"},
		"Signature":        {handSign(appID, nonce, secret, ts)},
	}
}

// deleteBody is a DeleteConv body.
func deleteBody(from, conv string, typ int) string {
	b, _ := json.Marshal(map[string]any{"FromUserId": from, "ConvId": conv, "ConvType": typ})
	return string(b)
}

// answer is a decoded API answer.
type answer struct {
	Status      int
	ContentType string
	Raw         []byte

	Code       int    `json:"Code"`
	Message    string `json:"Message"`
	RequestID  string `json:"RequestId"`
	TotalCount int    `json:"TotalCount"`
	Next       int64  `json:"Next"`
	List       []struct {
		ConvID     string `json:"ConvId"`
		ConvType   *int   `json:"ConvType"` // nil when absent
		UpdateTime int64  `json:"UpdateTime"`
	} `json:"List"`
}

// decodeAnswer decodes an answer that must be ZEGO's JSON envelope.
func decodeAnswer(t *testing.T, status int, contentType string, raw []byte) answer {
	t.Helper()
	a := answer{Status: status, ContentType: contentType, Raw: raw}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer is not JSON (HTTP %d): %q", status, raw)
	}
	for _, k := range []string{`"Code"`, `"Message"`, `"RequestId"`} {
		if !strings.Contains(string(raw), k) {
			t.Fatalf("answer lacks %s: %s", k, raw)
		}
	}
	return a
}

// post sends a raw API request over the network to base (a server URL that
// ends in "/") and decodes the envelope.
func post(t *testing.T, base string, q url.Values, body string) answer {
	t.Helper()
	resp := postRaw(t, base, q, body)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAnswer(t, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
}

// postRaw sends a raw API request and returns the response as is.
func postRaw(t *testing.T, base string, q url.Values, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", q.Get("Action"), err)
	}
	return resp
}

var testClient = &http.Client{Timeout: time.Minute}

// serve sends a raw API request straight to the handler, without a network
// (for testing/synctest bubbles).
func serve(t *testing.T, s *zimtest.Server, q url.Values, body string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/?"+q.Encode(), strings.NewReader(body))
	s.ServeHTTP(rec, req)
	return decodeAnswer(t, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes())
}

// logged returns the logged request that got the answer with this RequestId.
func logged(t *testing.T, s *zimtest.Server, requestID string) zimtest.Request {
	t.Helper()
	for _, r := range s.Requests() {
		if r.RequestID == requestID {
			return r
		}
	}
	t.Fatalf("no logged request with RequestId %q", requestID)
	return zimtest.Request{}
}

// newServer starts a server and closes it when the test ends.
func newServer(t *testing.T, opts ...zimtest.Option) *zimtest.Server {
	t.Helper()
	s := zimtest.NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// testConv is a one-on-one conversation with id.
func testConv(id string) zim.Conversation { return zim.Conversation{ConvID: id} }
