package zim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Sign(testAppID, "4fd24687296dd9f3", testSecret, 1700000000)
	}
}

// BenchmarkSignAndBuildRequest: nonce, timestamp, signature and one *http.Request.
func BenchmarkSignAndBuildRequest(b *testing.B) {
	c, err := New(testCreds)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(testReq)
	creds := Credentials{AppID: testAppID, ServerSecret: testSecret}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.newRequest(ctx, "DeleteConv", creds, body); err != nil {
			b.Fatal(err)
		}
	}
}

// fixedAnswer is a RoundTripper that answers every request with the same body,
// so a benchmark measures the client and not a network.
type fixedAnswer string

func (f fixedAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(string(f))),
		ContentLength: int64(len(f)),
		Request:       req,
	}, nil
}

// BenchmarkDeleteConversation: a full call (validate, limiter, sign, send,
// decode) through an in-memory transport; the limiter is set high so it never waits.
func BenchmarkDeleteConversation(b *testing.B) {
	hc := &http.Client{Transport: fixedAnswer(`{"Code":0,"Message":"success","RequestId":"343649807833778782"}`)}
	c, err := New(testCreds, WithHTTPClient(hc), WithRateLimit(1e9))
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.DeleteConversation(ctx, testReq); err != nil {
			b.Fatal(err)
		}
	}
}
