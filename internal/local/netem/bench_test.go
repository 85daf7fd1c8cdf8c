package netem_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// BenchmarkZEGOProfile measures HTTPS requests to a TLS zimtest server behind
// the default ZEGO link: a cold request (TCP, TLS, request) and a warm one on
// the same connection, and a cold batch of 10 concurrent requests on a new
// client: how long it takes and how many connections it opens (net/http dials
// one per waiting request before it knows the protocol, unless
// MaxConnsPerHost caps it). The figures go in docs, never in assertions:
//
//	go test -run '^$' -bench ZEGOProfile -benchtime 5x ./internal/local/netem
func BenchmarkZEGOProfile(b *testing.B) {
	s := zimtest.NewTLSServer()
	defer s.Close()
	link := netem.DefaultProfile().ZEGO
	target := strings.TrimPrefix(s.URL, "https://")
	for _, v := range []struct {
		name       string
		http2      bool
		maxVersion uint16
		maxConns   int // the transport's MaxConnsPerHost
	}{
		{"h2-tls13", true, 0, 0},
		{"h1-tls13", false, 0, 0},
		{"h2-tls12", true, tls.VersionTLS12, 0},
		{"h1-tls12", false, tls.VersionTLS12, 0},
		{"h2-tls13-maxconns2", true, 0, 2},
		{"h1-tls13-maxconns2", false, 0, 2},
	} {
		b.Run(v.name, func(b *testing.B) {
			p, err := netem.Listen(target, link)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			url := "https://" + p.Addr() + "/_zimtest/requests"
			client := func() *http.Client {
				hc := httpsClient(b, s, v.http2, v.maxVersion)
				hc.Transport.(*http.Transport).MaxConnsPerHost = v.maxConns
				return hc
			}
			var cold, warm, batch time.Duration
			var conns int
			for b.Loop() {
				hc := client()
				start := time.Now()
				get(b, hc, url)
				cold += time.Since(start)
				start = time.Now()
				get(b, hc, url)
				warm += time.Since(start)

				hc = client()
				before := p.Accepted()
				start = time.Now()
				var wg sync.WaitGroup
				for range 10 {
					wg.Go(func() { get(b, hc, url) })
				}
				wg.Wait()
				batch += time.Since(start)
				conns += p.Accepted() - before
			}
			n := float64(b.N)
			b.ReportMetric(float64(cold.Milliseconds())/n, "cold-ms")
			b.ReportMetric(float64(warm.Milliseconds())/n, "warm-ms")
			b.ReportMetric(float64(batch.Milliseconds())/n, "cold-batch-ms")
			b.ReportMetric(float64(conns)/n, "conns/cold-batch")
			b.ReportMetric(0, "ns/op")
		})
	}
}
