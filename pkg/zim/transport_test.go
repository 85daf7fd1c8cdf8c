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
)

// serverKind is what a test server offers.
type serverKind int

const (
	plainHTTP1 serverKind = iota // http://, HTTP/1.1 only
	tlsHTTP1                     // https://, ALPN offers only http/1.1
	tlsHTTP2                     // https://, ALPN offers h2 and http/1.1
)

func (k serverKind) String() string {
	return [...]string{"plain HTTP/1.1", "HTTPS HTTP/1.1 only", "HTTPS HTTP/2"}[k]
}

// tlsZEGO is fakeZEGO behind an httptest server that counts the connections
// it accepts and which of them carried requests: plain, or TLS with or
// without HTTP/2.
type tlsZEGO struct {
	*fakeZEGO
	srv    *httptest.Server
	conns  atomic.Int64
	protos sync.Map // request protocols seen, e.g. "HTTP/2.0"

	firstConn chan struct{} // closed when the server accepts its first connection
	firstOnce sync.Once

	mu       sync.Mutex
	accepted []net.Conn        // server side, in order
	used     map[net.Conn]bool // connections that carried a request
	bytes    atomic.Int64      // bytes the server read (plain servers only)
}

type connKey struct{}

func newTLSZEGO(t *testing.T, http2 bool, h http.Handler) *tlsZEGO {
	t.Helper()
	if http2 {
		return newZEGO(t, tlsHTTP2, h)
	}
	return newZEGO(t, tlsHTTP1, h)
}

func newZEGO(t *testing.T, kind serverKind, h http.Handler) *tlsZEGO {
	t.Helper()
	z := &tlsZEGO{fakeZEGO: newFake(), used: make(map[net.Conn]bool), firstConn: make(chan struct{})}
	if h == nil {
		h = z.fakeZEGO
	}
	mux := http.NewServeMux()
	mux.HandleFunc(testPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		z.protos.Store(r.Proto, true)
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			z.mu.Lock()
			z.used[c] = true
			z.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	z.srv = httptest.NewUnstartedServer(mux)
	z.srv.EnableHTTP2 = kind == tlsHTTP2
	z.srv.Listener = &countingListener{Listener: z.srv.Listener, read: &z.bytes}
	// Dials still in flight when a test ends fail their handshake at Close.
	z.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	z.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	z.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			z.conns.Add(1)
			z.mu.Lock()
			z.accepted = append(z.accepted, c)
			z.mu.Unlock()
			z.firstOnce.Do(func() { close(z.firstConn) })
		}
	}
	if kind == plainHTTP1 {
		z.srv.Start()
	} else {
		z.srv.StartTLS()
	}
	t.Cleanup(z.srv.Close)
	return z
}

func (z *tlsZEGO) sawProto(p string) bool { _, ok := z.protos.Load(p); return ok }

// awaitFirstConn waits until the server has accepted a connection: over plain
// TCP a client's connect returns before the server's Accept does.
func (z *tlsZEGO) awaitFirstConn(t *testing.T) {
	t.Helper()
	select {
	case <-z.firstConn:
	case <-time.After(time.Minute):
		t.Fatal("the server accepted no connection")
	}
}

// usedConns is how many distinct connections carried requests.
func (z *tlsZEGO) usedConns() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return len(z.used)
}

// closeAccepted closes, on the server's side, every connection accepted so far.
func (z *tlsZEGO) closeAccepted() {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, c := range z.accepted {
		c.Close()
	}
}

// countingListener counts the bytes its connections read.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, read: l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// zegoClient builds a Client with the default HTTP client for z: for TLS,
// trusting only z's test certificate, which is what SSL_CERT_FILE does for a
// deployed process.
func zegoClient(t *testing.T, z *tlsZEGO, opts ...Option) *Client {
	t.Helper()
	c := newTestClient(t, z.srv.URL+testPrefix, opts...)
	if z.srv.TLS == nil {
		return c
	}
	tr := c.http.Transport.(*http.Transport)
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = z.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return c
}

func tlsClient(t *testing.T, z *tlsZEGO, opts ...Option) *Client {
	t.Helper()
	return zegoClient(t, z, opts...)
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
		if tokens := c.limiter.(*pacer).lim.Tokens(); tokens < 1 {
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
	hc, _ := defaultHTTPClient(nil)
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatal("default transport is not an *http.Transport")
	}
	// Longer than net/http's 90 s, so that an instance idle for minutes keeps its connection.
	if !tr.ForceAttemptHTTP2 || tr.MaxIdleConnsPerHost != MaxRateLimit || tr.DisableKeepAlives || tr.IdleConnTimeout <= 10*time.Minute {
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
			dial := c.dialer.dial
			gate, dialed := make(chan struct{}), make(chan struct{}, 2*burst)
			var dials atomic.Int64
			c.dialer.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
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
	dialing := make(chan struct{})
	c.dialer.dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
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

// TestPreconnectHandsItsConnectionToTheFirstCall: Preconnect opens exactly one
// connection and sends nothing on it; the first call, and the next, use that
// connection: over plain HTTP/1.1, HTTPS with HTTP/1.1 only, and HTTP/2.
func TestPreconnectHandsItsConnectionToTheFirstCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind  serverKind
		proto string
	}{
		{plainHTTP1, "HTTP/1.1"},
		{tlsHTTP1, "HTTP/1.1"},
		{tlsHTTP2, "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			t.Parallel()
			z := newZEGO(t, tt.kind, nil)
			c := zegoClient(t, z)
			if err := c.Preconnect(t.Context()); err != nil {
				t.Fatalf("Preconnect: %v", err)
			}
			z.awaitFirstConn(t)
			if n := z.conns.Load(); n != 1 {
				t.Errorf("after Preconnect: %d connections, want 1", n)
			}
			if n := len(z.requests()); n != 0 {
				t.Errorf("after Preconnect: %d requests, want none", n)
			}
			if tt.kind == plainHTTP1 {
				if n := z.bytes.Load(); n != 0 {
					t.Errorf("after Preconnect: the server read %d bytes, want none", n)
				}
			}
			for i := range 2 {
				resp, err := c.DeleteConversation(t.Context(), testReq)
				if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				if resp.Attempts != 1 {
					t.Errorf("call %d: %d attempts, want 1", i+1, resp.Attempts)
				}
				if n, used := z.conns.Load(), z.usedConns(); n != 1 || used != 1 {
					t.Errorf("after call %d: %d connections, %d carried requests; want Preconnect's one for both", i+1, n, used)
				}
			}
			if !z.sawProto(tt.proto) {
				t.Errorf("no request over %s", tt.proto)
			}
		})
	}
}

// TestParkedConnection: over HTTP/1.1 the connection Preconnect opened waits
// for the first call. When that call comes late (a provisioned instance), the
// connection is used if still open, and replaced without a failed attempt if
// the server closed it or it is older than the idle timeout.
func TestParkedConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		kind      serverKind
		age       time.Duration
		closed    bool // the server closes it while parked
		wantConns int64
	}{
		{"plain, 10 minutes, open", plainHTTP1, 10 * time.Minute, false, 1},
		{"TLS, 10 minutes, open", tlsHTTP1, 10 * time.Minute, false, 1},
		{"plain, closed by the server", plainHTTP1, 2 * time.Second, true, 2},
		{"TLS, closed by the server", tlsHTTP1, 2 * time.Second, true, 2},
		{"TLS, older than the idle timeout", tlsHTTP1, idleConnTimeout + time.Second, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := newZEGO(t, tt.kind, nil)
			c := zegoClient(t, z)
			if err := c.Preconnect(t.Context()); err != nil {
				t.Fatalf("Preconnect: %v", err)
			}
			if tt.closed {
				z.awaitFirstConn(t)
				z.closeAccepted()
			}
			later := time.Now().Add(tt.age)
			c.dialer.now = func() time.Time { return later }
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if err != nil {
				t.Fatalf("DeleteConversation: %v", err)
			}
			if resp.Attempts != 1 {
				t.Errorf("%d attempts, want 1: a closed connection must be replaced before the request", resp.Attempts)
			}
			if n := z.conns.Load(); n != tt.wantConns {
				t.Errorf("%d connections, want %d", n, tt.wantConns)
			}
		})
	}
}

// TestPreconnectHTTP2IsPooled: over HTTP/2 the connection goes into the pool
// at once, so a burst of calls right after Preconnect shares it.
func TestPreconnectHTTP2IsPooled(t *testing.T) {
	t.Parallel()
	const burst = 10
	fake := newFake()
	z := newZEGO(t, tlsHTTP2, barrier(burst, fake))
	c := zegoClient(t, z, WithRateLimit(math.Inf(1)))
	var dials atomic.Int64
	dial := c.dialer.dial
	c.dialer.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	if err := c.Preconnect(t.Context()); err != nil {
		t.Fatalf("Preconnect: %v", err)
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
	if n, conns := dials.Load(), z.conns.Load(); n != 1 || conns != 1 {
		t.Errorf("%d dials, %d connections; want Preconnect's one", n, conns)
	}
}

// TestPreconnectWithOwnHTTPClient: with WithHTTPClient there is no pool of the
// Client's own to fill: Preconnect opens nothing.
func TestPreconnectWithOwnHTTPClient(t *testing.T) {
	t.Parallel()
	z := newZEGO(t, plainHTTP1, nil)
	c := newTestClient(t, z.srv.URL+testPrefix, WithHTTPClient(&http.Client{}))
	if err := c.Preconnect(t.Context()); err != nil {
		t.Fatalf("Preconnect: %v", err)
	}
	if n := z.conns.Load(); n != 0 {
		t.Errorf("%d connections, want none", n)
	}
}

// TestPooledConnectionClosedByTheServer: a pooled connection the server closes
// (its own idle limit) costs the next call a new connection, never the call.
// The transport drops a connection once it sees the close; here the call
// races it (sent at once), so its request goes out on the closed connection
// and fails as a transport error, which the client retries on a new one
// (net/http itself does not resend a POST it has written).
func TestPooledConnectionClosedByTheServer(t *testing.T) {
	t.Parallel()
	for _, kind := range []serverKind{plainHTTP1, tlsHTTP1, tlsHTTP2} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			z := newZEGO(t, kind, nil)
			c := zegoClient(t, z)
			if err := c.Preconnect(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
				t.Fatal(err)
			}
			z.closeAccepted()
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if err != nil {
				t.Fatalf("call after the server closed the pooled connection: %v", err)
			}
			if resp.Attempts > 2 {
				t.Errorf("%d attempts, want at most 2", resp.Attempts)
			}
			if n := z.conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2: the closed one and a new one", n)
			}
		})
	}
}
