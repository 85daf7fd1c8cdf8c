package zim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// tlsZEGO is fakeZEGO behind an httptest TLS server that counts the
// connections it accepts, with or without HTTP/2.
type tlsZEGO struct {
	*fakeZEGO
	srv    *httptest.Server
	conns  atomic.Int64
	heads  atomic.Int64 // HEAD requests, which never reach fakeZEGO
	protos sync.Map     // request protocols seen, e.g. "HTTP/2.0"
	// headGate, if set before the first request, holds HEAD answers until it is closed.
	headGate chan struct{}
}

func newTLSZEGO(t *testing.T, http2 bool, h http.Handler) *tlsZEGO {
	t.Helper()
	z := &tlsZEGO{fakeZEGO: newFake()}
	if h == nil {
		h = z.fakeZEGO
	}
	mux := http.NewServeMux()
	mux.HandleFunc(testPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		z.protos.Store(r.Proto, true)
		if r.Method == http.MethodHead {
			z.heads.Add(1)
			if r.URL.RawQuery != "" {
				t.Errorf("HEAD with a query %q: Preconnect must send nothing signed", r.URL.RawQuery)
			}
			if z.headGate != nil {
				<-z.headGate
			}
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
	z.srv = httptest.NewUnstartedServer(mux)
	z.srv.EnableHTTP2 = http2
	// Dials still in flight when a test ends fail their handshake at Close.
	z.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	z.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			z.conns.Add(1)
		}
	}
	z.srv.StartTLS()
	t.Cleanup(z.srv.Close)
	return z
}

func (z *tlsZEGO) sawProto(p string) bool { _, ok := z.protos.Load(p); return ok }

// tlsClient builds a Client with the default HTTP client, trusting only z's
// test certificate: what SSL_CERT_FILE does for a deployed process.
func tlsClient(t *testing.T, z *tlsZEGO, opts ...Option) *Client {
	t.Helper()
	c := newTestClient(t, z.srv.URL+testPrefix, opts...)
	tr := c.http.Transport.(*http.Transport)
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = z.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return c
}

// barrier holds every request until n have arrived, so that n calls are in
// flight together whatever the scheduling.
func barrier(n int, next http.Handler) http.Handler {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-r.Context().Done():
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestConnectionsPerBurst: ten calls in flight together share one connection
// over HTTP/2, most of all after Preconnect; over HTTP/1.1 each needs its own,
// and the preconnected one is among them.
func TestConnectionsPerBurst(t *testing.T) {
	t.Parallel()
	const burst = 10
	tests := []struct {
		name       string
		http2      bool
		preconnect bool
		proto      string
		check      func(conns int64) bool
		want       string
	}{
		{"HTTP/2 after Preconnect", true, true, "HTTP/2.0", func(n int64) bool { return n <= 2 }, "at most 2"},
		{"HTTP/2 cold", true, false, "HTTP/2.0", func(n int64) bool { return n <= burst }, "at most 10"},
		{"HTTP/1.1 after Preconnect", false, true, "HTTP/1.1", func(n int64) bool { return n == burst }, "exactly 10 (the preconnected one reused)"},
		{"HTTP/1.1 cold", false, false, "HTTP/1.1", func(n int64) bool { return n == burst }, "exactly 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake()
			z := newTLSZEGO(t, tt.http2, barrier(burst, fake))
			c := tlsClient(t, z, WithRateLimit(math.Inf(1)))
			if tt.preconnect {
				if err := c.Preconnect(t.Context()); err != nil {
					t.Fatalf("Preconnect: %v", err)
				}
				// Over HTTP/2 Preconnect returns once the connection is open; its HEAD may still be on the way.
				if got := z.conns.Load(); got != 1 {
					t.Fatalf("after Preconnect: %d connections, want 1", got)
				}
			}
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					req := testReq
					req.ConvID = fmt.Sprintf("conv-%d", i)
					if _, err := c.DeleteConversation(t.Context(), req); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if tt.preconnect {
				for deadline := time.Now().Add(5 * time.Second); z.heads.Load() != 1 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				if n := z.heads.Load(); n != 1 {
					t.Errorf("%d HEAD requests, want Preconnect's one", n)
				}
			}
			conns := z.conns.Load()
			t.Logf("%s: %d connections for %d concurrent calls", tt.name, conns, burst)
			if !tt.check(conns) {
				t.Errorf("%d connections, want %s", conns, tt.want)
			}
			if n := len(fake.requests()); n != burst {
				t.Errorf("%d signed requests, want %d", n, burst)
			}
			if !z.sawProto(tt.proto) {
				t.Errorf("no request over %s", tt.proto)
			}
		})
	}
}

// TestPreconnectHTTP2DoesNotWaitForTheAnswer: over HTTP/2 the connection
// carries calls as soon as it is open, so Preconnect returns then, and the
// first call shares it while the HEAD's answer is still on the way: init
// costs the connection's set-up, not one more round trip.
func TestPreconnectHTTP2DoesNotWaitForTheAnswer(t *testing.T) {
	t.Parallel()
	z := newTLSZEGO(t, true, nil)
	z.headGate = make(chan struct{})
	defer close(z.headGate)
	c := tlsClient(t, z)
	// Bounded, so that a Preconnect waiting for the held answer fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Preconnect(ctx); err != nil {
		t.Fatalf("Preconnect: %v", err)
	}
	if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
		t.Fatalf("first call while the HEAD is unanswered: %v", err)
	}
	if n := z.conns.Load(); n != 1 {
		t.Errorf("%d connections, want the preconnected one", n)
	}
}

// TestPreconnect: no signature, no credentials, no rate-limit slot; any answer
// will do; failures are transport errors bounded by the context.
func TestPreconnect(t *testing.T) {
	t.Parallel()

	t.Run("takes no rate-limit slot", func(t *testing.T) {
		t.Parallel()
		z := newTLSZEGO(t, true, nil)
		c := tlsClient(t, z, WithRateLimit(1))
		if err := c.Preconnect(t.Context()); err != nil {
			t.Fatal(err)
		}
		// At 1/s, a taken slot would leave less than one token for the first call.
		if tokens := c.limiter.(*rate.Limiter).Tokens(); tokens < 1 {
			t.Errorf("limiter has %v tokens after Preconnect, want its full burst of 1", tokens)
		}
		if n := len(z.requests()); n != 0 {
			t.Errorf("%d API requests, want none", n)
		}
	})

	t.Run("refused connection", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c := newTestClient(t, "http://"+addr+testPrefix)
		err = c.Preconnect(t.Context())
		if !errors.Is(err, ErrTransport) {
			t.Errorf("err = %v, want ErrTransport", err)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("error %q contains the secret", err)
		}
	})

	t.Run("bounded by the context", func(t *testing.T) {
		t.Parallel()
		z := newTLSZEGO(t, true, nil)
		c := tlsClient(t, z)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.Preconnect(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTransport) {
			t.Errorf("err = %v, want context.Canceled and ErrTransport", err)
		}
	})
}

func TestDefaultTransport(t *testing.T) {
	t.Parallel()
	tr, ok := defaultHTTPClient().Transport.(*http.Transport)
	if !ok {
		t.Fatal("default transport is not an *http.Transport")
	}
	if !tr.ForceAttemptHTTP2 || tr.MaxIdleConnsPerHost != MaxRateLimit || tr.DisableKeepAlives || tr.IdleConnTimeout == 0 {
		t.Errorf("transport: ForceAttemptHTTP2 %v, MaxIdleConnsPerHost %d, DisableKeepAlives %v, IdleConnTimeout %v",
			tr.ForceAttemptHTTP2, tr.MaxIdleConnsPerHost, tr.DisableKeepAlives, tr.IdleConnTimeout)
	}
	if tr.TLSClientConfig != nil && tr.TLSClientConfig.RootCAs != nil {
		t.Error("the default transport pins its roots; it must use the system's (and SSL_CERT_FILE)")
	}
}

// TestCallsWaitForPreconnect: calls made while Preconnect is still connecting
// wait for it instead of dialling their own connection, so over HTTP/2 a cold
// batch started before the handshake ends still uses one connection.
func TestCallsWaitForPreconnect(t *testing.T) {
	t.Parallel()
	const burst = 10
	for _, http2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("HTTP/2 %v", http2), func(t *testing.T) {
			t.Parallel()
			z := newTLSZEGO(t, http2, nil)
			c := tlsClient(t, z, WithRateLimit(math.Inf(1)))

			// Dials wait at a gate: Preconnect's connection is still being opened.
			tr := c.http.Transport.(*http.Transport)
			dial := tr.DialContext
			gate, dialed := make(chan struct{}), make(chan struct{}, 2*burst)
			var dials atomic.Int64
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				dialed <- struct{}{}
				select {
				case <-gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return dial(ctx, network, addr)
			}
			waiting := make(chan struct{}, burst)
			c.testPreconnectWait = func() { waiting <- struct{}{} }

			pre := make(chan error, 1)
			go func() { pre <- c.Preconnect(t.Context()) }()
			<-dialed
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					req := testReq
					req.ConvID = fmt.Sprintf("conv-%d", i)
					if _, err := c.DeleteConversation(t.Context(), req); err != nil {
						t.Error(err)
					}
				})
			}
			for n := 0; n < burst; {
				select {
				case <-waiting:
					n++
				case <-dialed:
					t.Errorf("a call dialled while Preconnect was connecting")
					n = burst
				}
			}
			close(gate)
			wg.Wait()
			if err := <-pre; err != nil {
				t.Fatalf("Preconnect: %v", err)
			}
			t.Logf("HTTP/2 %v: %d dials, %d connections for Preconnect and %d calls", http2, dials.Load(), z.conns.Load(), burst)
			if http2 && (dials.Load() != 1 || z.conns.Load() != 1) {
				t.Errorf("%d dials, %d connections; want 1: every call on Preconnect's connection", dials.Load(), z.conns.Load())
			}
			if n := len(z.requests()); n != burst {
				t.Errorf("%d signed requests, want %d", n, burst)
			}
		})
	}
}

// TestCallWaitForPreconnectEndsWithContext: a call's own context bounds its wait.
func TestCallWaitForPreconnectEndsWithContext(t *testing.T) {
	t.Parallel()
	z := newTLSZEGO(t, true, nil)
	c := tlsClient(t, z)
	tr := c.http.Transport.(*http.Transport)
	dialing := make(chan struct{})
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		close(dialing)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	preCtx, stop := context.WithCancel(t.Context())
	pre := make(chan error, 1)
	go func() { pre <- c.Preconnect(preCtx) }()
	<-dialing

	ctx, cancel := context.WithCancel(t.Context())
	c.testPreconnectWait = cancel
	resp, err := c.DeleteConversation(ctx, testReq)
	if !errors.Is(err, context.Canceled) || resp != nil {
		t.Errorf("resp %+v, err = %v; want no request and context.Canceled", resp, err)
	}
	stop()
	if err := <-pre; !errors.Is(err, context.Canceled) {
		t.Errorf("Preconnect: %v, want context.Canceled", err)
	}
	if n := len(z.requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}
