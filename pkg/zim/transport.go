package zim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// idleConnTimeout is how long a pooled connection to ZEGO stays open with no
// request. ZEGO documents no server-side idle limit. Kept longer than
// net/http's 90 s default, so that a provisioned instance called minutes after
// its last request still finds its connection: a handshake costs two round
// trips (TCP and TLS 1.3) every time, while a connection closed meanwhile
// costs nothing (the transport sees the close and drops it) or, if the close
// races the request, one retry by the client (transport errors are retried).
// TCP keep-alive probes every 30 s keep NAT state alive while the process runs
// (an AWS NAT gateway drops idle flows after 350 s, and answers RST, not
// silence, to a late packet).
const idleConnTimeout = 15 * time.Minute

// defaultHTTPClient bounds every phase of an attempt, so that a stuck connection
// costs one retry rather than the caller's whole deadline. Its transport keeps
// connections for reuse and speaks HTTP/2 where the server offers it, so that
// concurrent calls share one connection instead of a handshake each. The
// returned dialer opens its connections, and lets Preconnect hand it one.
func defaultHTTPClient(dial dialFunc) (*http.Client, *dialer) {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	d := &dialer{tr: t, dial: dial, now: time.Now}
	// A custom dialer turns off net/http's automatic HTTP/2 unless this is set.
	t.ForceAttemptHTTP2 = true
	t.DialContext = d.dialContext
	t.DialTLSContext = d.dialTLSContext
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = idleConnTimeout
	// Over HTTP/1.1 one connection carries one request at a time: at the full
	// rate with answers under a second, this many stay open for reuse.
	t.MaxIdleConnsPerHost = MaxRateLimit
	return &http.Client{
		Transport: t,
		Timeout:   10 * time.Second,
		// A redirect would resend the signed query elsewhere; ZEGO never redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, d
}

// dialFunc opens a TCP connection, like net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// WithDialContext sets how the default HTTP client opens TCP connections
// (default: a net.Dialer with a 5 s timeout and 30 s keep-alive). TLS, HTTP/2
// and Preconnect work on top of it as they do by default. It has no effect
// with WithHTTPClient.
func WithDialContext(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(s *settings) error {
		if dial == nil {
			return errors.New("zim: WithDialContext: dial is nil")
		}
		s.dial = dial
		return nil
	}
}

// dialer opens the default transport's connections: TCP through dial, then
// TLS as net/http would. It also holds the connection Preconnect opened over
// HTTP/1.1 until the transport's first dial to that address takes it, since
// net/http has no way to put a connection in its pool other than a dial.
type dialer struct {
	tr   *http.Transport
	dial dialFunc
	now  func() time.Time // tests move it to age the parked connection

	protosOnce sync.Once

	mu     sync.Mutex
	parked *parkedConn
}

// parkedConn is a connection opened by Preconnect and not used yet.
type parkedConn struct {
	addr string
	tls  bool
	conn net.Conn // a *tls.Conn over TLS
	at   time.Time
}

// probeAfter is how long a parked connection waits before the dial that takes
// it first checks that the server has not closed it meanwhile (a provisioned
// instance may be called long after init). Younger ones are taken unchecked.
const probeAfter = time.Second

// probeWait is how long that check waits for the connection to show a close.
const probeWait = time.Millisecond

func (d *dialer) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := d.take(addr, false); c != nil {
		return c, nil
	}
	return d.dial(ctx, network, addr)
}

// dialTLSContext opens a TLS connection the way net/http does without a TLS
// dialer (its configuration, the host as server name, TLSHandshakeTimeout).
// Given a *tls.Conn that negotiated "h2", net/http speaks HTTP/2 on it.
func (d *dialer) dialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if c := d.take(addr, true); c != nil {
		return c, nil
	}
	raw, err := d.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return d.handshake(ctx, raw, addr)
}

func (d *dialer) handshake(ctx context.Context, raw net.Conn, addr string) (*tls.Conn, error) {
	d.protosOnce.Do(func() {
		// net/http sets up HTTP/2 (and the ALPN protocols TLSClientConfig
		// offers) lazily, on the transport's first use; Clone is such a use
		// and has no other effect. Without it the first handshake would not
		// offer h2.
		_ = d.tr.Clone()
	})
	var cfg *tls.Config
	if d.tr.TLSClientConfig != nil {
		cfg = d.tr.TLSClientConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			_ = raw.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	if to := d.tr.TLSHandshakeTimeout; to > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// park keeps p for the next dial to its address, closing any it replaces.
func (d *dialer) park(p *parkedConn) {
	d.mu.Lock()
	old := d.parked
	d.parked = p
	d.mu.Unlock()
	if old != nil {
		_ = old.conn.Close()
	}
}

// take returns the parked connection when it is for addr and still open.
func (d *dialer) take(addr string, tls bool) net.Conn {
	d.mu.Lock()
	p := d.parked
	if p == nil || p.addr != addr || p.tls != tls {
		d.mu.Unlock()
		return nil
	}
	d.parked = nil
	d.mu.Unlock()
	age := d.now().Sub(p.at)
	if (d.tr.IdleConnTimeout > 0 && age > d.tr.IdleConnTimeout) || (age > probeAfter && !stillOpen(p.conn, probeWait)) {
		_ = p.conn.Close()
		return nil
	}
	return p.conn
}

// stillOpen reads from c for up to wait and reports whether the server has
// neither closed it nor sent anything: over HTTP/1.1 a server speaks only when
// asked, unless to say it is closing (a 408 answer). Over TLS, Read handles
// what may come unasked (TLS 1.3 session tickets) and returns no data for it.
// A read that times out leaves a *tls.Conn usable. Only for a parked
// connection, which no one else reads.
func stillOpen(c net.Conn, wait time.Duration) bool {
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return false
	}
	var one [1]byte
	n, err := c.Read(one[:])
	if derr := c.SetReadDeadline(time.Time{}); derr != nil || n > 0 {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Preconnect opens the connection to the API's host ahead of the first call
// (DNS, TCP and, over HTTPS, TLS) and hands it to the Client's connection pool,
// so that the first signed request costs one round trip instead of several.
// Calling it is optional; it sends no request, takes no credentials and no
// rate-limit slot.
//
// Over HTTP/2 (the server chose "h2" by ALPN) the connection goes into the
// pool at once, and calls share it. Over HTTP/1.1 it waits for the first call,
// which takes it instead of dialling (a connection closed by the server
// meanwhile is dropped and a new one dialled). Calls made while Preconnect is
// connecting wait for it (within their own contexts), so that over HTTP/2 they
// share its connection instead of each opening one.
//
// It is bounded by ctx, which does not bound the connection once open. An
// error (matching ErrTransport, and the context's error when ctx ended) only
// means the first call connects by itself; it carries no credentials. With
// WithHTTPClient, or when the transport would reach the host through a proxy,
// it does nothing and returns nil.
func (c *Client) Preconnect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("zim: preconnect: %w: %w", ErrTransport, err)
	}
	d := c.dialer
	if d == nil {
		return nil
	}
	u, err := url.Parse(c.base)
	if err != nil {
		return fmt.Errorf("zim: preconnect: %w", err)
	}
	if d.tr.Proxy != nil {
		req := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}}
		if p, err := d.tr.Proxy(req); err != nil || p != nil {
			return nil
		}
	}
	addr := canonicalAddr(u)

	done := make(chan struct{})
	c.preconnecting.Store(&done)
	defer func() {
		c.preconnecting.CompareAndSwap(&done, nil)
		close(done)
	}()

	start := d.now()
	conn, err := d.dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("zim: preconnect: %w: %w", ErrTransport, err)
	}
	p := &parkedConn{addr: addr, conn: conn}
	proto := "HTTP/1.1"
	if u.Scheme == "https" {
		tc, err := d.handshake(ctx, conn, addr)
		if err != nil {
			return fmt.Errorf("zim: preconnect: %w: %w", ErrTransport, err)
		}
		p.conn, p.tls = tc, true
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			if next := d.tr.TLSNextProto["h2"]; next != nil {
				// What net/http does with an h2 connection it dialled: the
				// HTTP/2 transport takes it into its pool, where every request
				// to addr finds it.
				next(addr, tc)
				c.logPreconnect(ctx, "HTTP/2.0", d.now().Sub(start))
				return nil
			}
		}
	}
	p.at = d.now()
	d.park(p)
	c.logPreconnect(ctx, proto, p.at.Sub(start))
	return nil
}

func (c *Client) logPreconnect(ctx context.Context, proto string, latency time.Duration) {
	c.log.DebugContext(ctx, "zim: preconnect", "protocol", proto, "latency", latency)
}

// canonicalAddr is u's host:port, the port defaulted from the scheme: the
// address net/http dials and keys its pools by.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// awaitPreconnect waits for a Preconnect in progress, if any: net/http does not
// share a connection being dialled, so each call would otherwise open its own.
func (c *Client) awaitPreconnect(ctx context.Context) error {
	done := c.preconnecting.Load()
	if done == nil {
		return nil
	}
	if c.testPreconnectWait != nil {
		c.testPreconnectWait()
	}
	select {
	case <-*done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for Preconnect: %w", ctx.Err())
	}
}
