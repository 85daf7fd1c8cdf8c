package handler

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// answerOK is an in-memory ZEGO: every request succeeds at once.
type answerOK struct{}

func (answerOK) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(`{"Code":0,"Message":"success","RequestId":"343649807833778782"}`)),
		Request: r,
	}, nil
}

// BenchmarkSQSBatch10 measures the handler's own cost for a batch of ten
// valid records: routing, decoding, validation, signing, the (in-memory)
// request, logging and metrics. The limiter is set high so it never waits.
func BenchmarkSQSBatch10(b *testing.B) {
	client, err := zim.New(zim.StaticCredentials{AppID: testAppID, ServerSecret: testSecret}, zim.WithBaseURL("https://zim-api.zego.im"),
		zim.WithHTTPClient(&http.Client{Transport: answerOK{}}), zim.WithRateLimit(1e9))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := New(client, log, outcome.NewMetrics(io.Discard), "", nil)
	var recs []sqsRecord
	for i := range 10 {
		recs = append(recs, sqsRecord{id: fmt.Sprintf("m-%d", i), body: body("alice", fmt.Sprintf("conv-%d", i), 0)})
	}
	t := &testing.T{}
	payload := sqsEvent(t, recs...)
	b.ReportAllocs()
	for b.Loop() {
		out, err := h.Invoke(b.Context(), payload)
		if err != nil || !strings.Contains(string(out), `"batchItemFailures":[]`) {
			b.Fatalf("%s %v", out, err)
		}
	}
}
