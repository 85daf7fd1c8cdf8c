package netem_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// Over real sockets the clock is the machine's, so these tests check lower
// bounds only (the proxy only adds delay) and structural facts.

// listen starts a proxy to target and closes it when the test ends.
func listen(t *testing.T, target string, link netem.Link) *netem.Proxy {
	t.Helper()
	p, err := netem.Listen(target, link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// tcpServer accepts connections on 127.0.0.1 and runs serve on each, until
// the test ends.
func tcpServer(t *testing.T, serve func(*net.TCPConn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(c.(*net.TCPConn))
			})
		}
	})
	return l.Addr().String()
}

func TestHalfClosePropagates(t *testing.T) {
	t.Parallel()
	// The server reads until EOF, then answers how much it read.
	target := tcpServer(t, func(c *net.TCPConn) {
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			t.Errorf("server: %v", err)
		}
		fmt.Fprintf(c, "read %d bytes", n)
	})
	p := listen(t, target, netem.Link{Setup: 2 * time.Millisecond, RoundTrip: 4 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("x"), 100_000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "read 100000 bytes" {
		t.Fatalf("after a half-close the client read %q, %v; want the server's answer, then EOF", got, err)
	}
	if p.Accepted() != 1 {
		t.Errorf("Accepted = %d, want 1", p.Accepted())
	}
}

func TestResetEndsBothSides(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	target := tcpServer(t, func(c *net.TCPConn) {
		_, err := io.Copy(io.Discard, c)
		ended <- err
	})
	p := listen(t, target, netem.Link{RoundTrip: 2 * time.Millisecond})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // Close sends a reset
	c.Close()
	select {
	case <-ended: // EOF or a reset: either way the server's side ended
	case <-time.After(time.Minute):
		t.Fatal("the server's side is still open a minute after the client reset")
	}
}

// Not parallel: it looks at every goroutine of the test binary.
func TestCloseWaitsForItsGoroutines(t *testing.T) {
	target := tcpServer(t, func(c *net.TCPConn) { _, _ = io.Copy(c, c) })
	p, err := netem.Listen(target, netem.Link{Setup: time.Millisecond, RoundTrip: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("held for an hour")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for p.Accepted() < len(conns) {
		time.Sleep(time.Millisecond)
	}
	if n := proxyGoroutines(); n == 0 {
		t.Fatal("no proxy goroutine found while connections are open: the check below would prove nothing")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := proxyGoroutines(); n != 0 {
		t.Fatalf("%d of the proxy's goroutines are still running after Close", n)
	}
	// Each client sees its connection end (EOF, or a reset where the proxy
	// had not read all it was sent), with nothing delivered.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		b, err := io.ReadAll(c)
		var ne net.Error
		if len(b) != 0 || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("after Close the client read %q, %v; want the connection ended with nothing", b, err)
		}
	}
}

// proxyGoroutines counts the goroutines running package netem's code.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "internal/local/netem.(*") {
			n++
		}
	}
	return n
}

// httpsClient returns a client for s that speaks HTTP/2 or only HTTP/1.1,
// up to TLS version maxVersion, with its own connection pool.
func httpsClient(t testing.TB, s *zimtest.Server, http2 bool, maxVersion uint16) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.CertificatePEM())
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MaxVersion: maxVersion},
		ForceAttemptHTTP2: http2,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// get fetches url (the admin API's request log, which needs no signature)
// and checks the answer.
func get(t testing.TB, hc *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("[")) {
		t.Fatalf("GET %s: HTTP %d %q, %v", url, resp.StatusCode, body, err)
	}
	return resp
}

func TestHTTPS(t *testing.T) {
	t.Parallel()
	s := zimtest.NewTLSServer()
	t.Cleanup(s.Close)
	const rtt = 20 * time.Millisecond
	link := netem.Link{Setup: rtt, RoundTrip: rtt}
	tests := []struct {
		name       string
		http2      bool
		maxVersion uint16
		wantProto  int
		wantTLS    uint16
		handshake  int // the TLS handshake's round trips
	}{
		{"HTTP/2, TLS 1.3", true, 0, 2, tls.VersionTLS13, 1},
		{"HTTP/1.1, TLS 1.3", false, 0, 1, tls.VersionTLS13, 1},
		{"HTTP/2, TLS 1.2", true, tls.VersionTLS12, 2, tls.VersionTLS12, 2},
		{"HTTP/1.1, TLS 1.2", false, tls.VersionTLS12, 1, tls.VersionTLS12, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := listen(t, strings.TrimPrefix(s.URL, "https://"), link)
			url := "https://" + p.Addr() + "/_zimtest/requests"
			hc := httpsClient(t, s, tt.http2, tt.maxVersion)

			start := time.Now()
			resp := get(t, hc, url)
			cold := time.Since(start)
			if resp.ProtoMajor != tt.wantProto || resp.TLS.Version != tt.wantTLS {
				t.Fatalf("answered over %s, TLS %#x", resp.Proto, resp.TLS.Version)
			}
			// TCP, the TLS handshake, then the request: a lower bound only.
			if want := link.Setup + time.Duration(tt.handshake+1)*rtt; cold < want {
				t.Errorf("cold request took %v, less than TCP + %d TLS round trips + 1 = %v", cold, tt.handshake, want)
			}
			for range 3 {
				start = time.Now()
				get(t, hc, url)
				if warm := time.Since(start); warm < rtt {
					t.Errorf("warm request took %v, less than one round trip", warm)
				}
			}
			// Keep-alive (HTTP/1.1) and the HTTP/2 connection carried them all.
			if p.Accepted() != 1 {
				t.Errorf("Accepted = %d after sequential requests, want 1", p.Accepted())
			}
		})
	}
}

func TestHTTP2Multiplexes(t *testing.T) {
	t.Parallel()
	s := zimtest.NewTLSServer()
	t.Cleanup(s.Close)
	const rtt = 20 * time.Millisecond
	p := listen(t, strings.TrimPrefix(s.URL, "https://"), netem.Link{Setup: rtt, RoundTrip: rtt})
	url := "https://" + p.Addr() + "/_zimtest/requests"
	hc := httpsClient(t, s, true, 0)
	get(t, hc, url) // the connection exists: concurrent requests share it

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if resp := get(t, hc, url); resp.ProtoMajor != 2 {
				t.Errorf("answered over %s", resp.Proto)
			}
		})
	}
	wg.Wait()
	if p.Accepted() != 1 {
		t.Errorf("Accepted = %d after 10 concurrent HTTP/2 requests on a warm connection, want 1", p.Accepted())
	}
}
