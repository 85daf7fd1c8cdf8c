package zim

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// defaultHTTPClient bounds every phase of an attempt, so that a stuck connection
// costs one retry rather than the caller's whole deadline. Its transport keeps
// connections for reuse and speaks HTTP/2 where the server offers it, so that
// concurrent calls share one connection instead of a handshake each.
func defaultHTTPClient() *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	// A custom dialer turns off net/http's automatic HTTP/2 unless this is set.
	t.ForceAttemptHTTP2 = true
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	// Over HTTP/1.1 one connection carries one request at a time: at the full
	// rate with answers under a second, this many stay open for reuse.
	t.MaxIdleConnsPerHost = MaxRateLimit
	return &http.Client{
		Transport: t,
		Timeout:   10 * time.Second,
		// A redirect would resend the signed query elsewhere; ZEGO never redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Preconnect opens a connection to the API's host ahead of the first call: DNS,
// TCP and TLS into the Client's own connection pool, so that the first signed
// request costs one round trip instead of several. Calling it is optional.
//
// It sends one unsigned HEAD request for the base URL, with no credentials and
// no rate-limit slot, and discards the answer whatever its status: any answer
// means the connection is open. Over HTTP/2 it returns as soon as the
// connection is open (calls share it at once; the HEAD's answer is read in the
// background); over HTTP/1.1 once the answer is read, since only then does the
// connection go back to the pool. It is bounded by ctx. Calls made meanwhile
// wait (within their own contexts) until its connection is open, so that over
// HTTP/2 they share it instead of each opening one. An error (matching ErrTransport, and
// the context's error when ctx ended) only means the first call connects by
// itself; it carries no credentials.
func (c *Client) Preconnect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("zim: preconnect: %w: %w", ErrTransport, err)
	}
	done := make(chan struct{})
	var once sync.Once
	release := func() {
		once.Do(func() {
			c.preconnecting.CompareAndSwap(&done, nil)
			close(done)
		})
	}
	c.preconnecting.Store(&done)
	defer release()

	open := make(chan struct{}, 1)
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		// Calls waiting for the connection go on now: over HTTP/2 they share
		// it; over HTTP/1.1 it carries the HEAD, so they would dial their own
		// anyway, and waiting for its answer would only delay them.
		release()
		if tc, ok := info.Conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
			select {
			case open <- struct{}{}:
			default:
			}
		}
	}}
	// The HEAD may outlive ctx once Preconnect has returned over HTTP/2:
	// cancelling it then would only waste the round trip. It is bounded by
	// preconnectTimeout instead.
	reqCtx, cancel := context.WithTimeout(httptrace.WithClientTrace(context.WithoutCancel(ctx), trace), preconnectTimeout)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodHead, c.base, nil)
	if err != nil {
		cancel()
		return fmt.Errorf("zim: preconnect: building the request failed: %w", err)
	}
	answered := make(chan error, 1)
	go func() {
		defer cancel()
		defer release()
		t0 := time.Now()
		hr, err := c.http.Do(req)
		if err != nil {
			answered <- fmt.Errorf("zim: preconnect: %w: %w", ErrTransport, err)
			return
		}
		// Drained and closed, an HTTP/1.1 connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(hr.Body, maxBodyBytes))
		_ = hr.Body.Close()
		if c.log.Enabled(reqCtx, slog.LevelDebug) {
			c.log.LogAttrs(reqCtx, slog.LevelDebug, "zim: preconnect",
				slog.String("protocol", hr.Proto),
				slog.Int("http_status", hr.StatusCode),
				slog.Duration("latency", time.Since(t0)))
		}
		answered <- nil
	}()
	select {
	case <-open:
		return nil
	case err := <-answered:
		return err
	case <-ctx.Done():
		return fmt.Errorf("zim: preconnect: %w: %w", ErrTransport, ctx.Err())
	}
}

// preconnectTimeout bounds Preconnect's HEAD request, which may go on after
// Preconnect returns.
const preconnectTimeout = 10 * time.Second

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
