package netem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// chunkSize is the largest read the proxy forwards as one piece.
	chunkSize = 32 << 10
	// inFlight is how many chunks one direction holds before it stops
	// reading (with chunkSize, 2 MiB): the proxy's stand-in for a TCP window.
	inFlight = 64
	// dialTimeout bounds the connection to the target.
	dialTimeout = 10 * time.Second
	// acceptBackoff is the pause after an Accept error other than Close
	// (such as running out of file descriptors).
	acceptBackoff = 10 * time.Millisecond
)

// Proxy is a latency-injecting TCP proxy; see the package documentation for
// its model. Create it with Listen and Close it when done. Its methods are
// safe for concurrent use.
type Proxy struct {
	ln       net.Listener
	dial     func(context.Context) (net.Conn, error)
	link     Link
	accepted atomic.Int64

	ctx    context.Context // cancelled by Close: ends every connection
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// Listen starts a proxy on a free port of 127.0.0.1 that forwards every
// connection to target (a "host:port" reached over TCP) with the latency of
// link. Negative durations are refused.
func Listen(target string, link Link) (*Proxy, error) {
	if link.Setup < 0 || link.RoundTrip < 0 {
		return nil, fmt.Errorf("netem: negative latency %+v", link)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netem: %w", err)
	}
	var d net.Dialer
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", target) }
	return serve(ln, dial, link), nil
}

// serve starts proxying the connections of ln to those dial opens. Tests give
// it in-memory pipes.
func serve(ln net.Listener, dial func(context.Context) (net.Conn, error), link Link) *Proxy {
	p := &Proxy{ln: ln, dial: dial, link: link}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

// Addr returns the address clients connect to, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted returns how many connections the proxy has accepted so far,
// including any whose target could not be reached (those are closed at once).
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// Close stops accepting, closes every proxied connection (dropping data in
// flight) and returns once all of the proxy's goroutines have. Calling it more
// than once is harmless; later calls return nil.
func (p *Proxy) Close() error {
	first := false
	p.once.Do(func() {
		first = true
		p.cancel()
		p.err = p.ln.Close()
	})
	p.wg.Wait()
	if first {
		return p.err
	}
	return nil
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			select {
			case <-time.After(acceptBackoff):
				continue
			case <-p.ctx.Done():
				return
			}
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.handle(c, time.Now())
	}
}

// handle proxies one accepted connection until both directions have ended
// or either side fails.
func (p *Proxy) handle(client net.Conn, accepted time.Time) {
	defer p.wg.Done()
	defer client.Close()
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	server, err := p.dial(ctx)
	cancel()
	if err != nil {
		return
	}
	defer server.Close()

	c := &conn{
		client: client, server: server,
		ready:  accepted.Add(p.link.Setup),
		oneWay: p.link.RoundTrip / 2,
		abort:  make(chan struct{}),
	}
	stop := context.AfterFunc(p.ctx, c.kill)
	defer stop()
	var wg sync.WaitGroup
	c.pipe(&wg, client, server)
	c.pipe(&wg, server, client)
	wg.Wait()
}

// conn is one proxied connection.
type conn struct {
	client, server net.Conn
	ready          time.Time // nothing is delivered before ready + oneWay
	oneWay         time.Duration
	abort          chan struct{}
	once           sync.Once
}

// chunk is data read from one side, or its EOF, and when to deliver it.
type chunk struct {
	data []byte
	eof  bool
	at   time.Time
}

// deliverAt is when bytes read at now reach the other side.
func (c *conn) deliverAt(now time.Time) time.Time {
	if now.Before(c.ready) {
		now = c.ready
	}
	return now.Add(c.oneWay)
}

// kill ends the connection at once: it unblocks every read, write and wait
// of its four goroutines.
func (c *conn) kill() {
	c.once.Do(func() {
		close(c.abort)
		_ = c.client.Close()
		_ = c.server.Close()
	})
}

// pipe starts the delay line from src to dst: a reader that stamps each chunk
// with its delivery time, and a writer that delivers it then.
func (c *conn) pipe(wg *sync.WaitGroup, src, dst net.Conn) {
	q := make(chan chunk, inFlight)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(q)
		buf := make([]byte, chunkSize)
		for {
			n, err := src.Read(buf)
			if n > 0 && !c.send(q, chunk{data: bytes.Clone(buf[:n]), at: c.deliverAt(time.Now())}) {
				return
			}
			if errors.Is(err, io.EOF) {
				c.send(q, chunk{eof: true, at: c.deliverAt(time.Now())})
				return
			}
			if err != nil {
				c.kill()
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTimer(time.Hour)
		t.Stop() // armed per chunk
		defer t.Stop()
		for ch := range q {
			if d := time.Until(ch.at); d > 0 {
				t.Reset(d)
				select {
				case <-t.C:
				case <-c.abort:
					return
				}
			}
			if ch.eof {
				closeWrite(dst)
				return
			}
			if _, err := dst.Write(ch.data); err != nil {
				c.kill()
				return
			}
		}
	}()
}

// send queues ch, unless the connection is killed first.
func (c *conn) send(q chan<- chunk, ch chunk) bool {
	select {
	case q <- ch:
		return true
	case <-c.abort:
		return false
	}
}

// closeWrite forwards an EOF: a half-close where the connection supports it
// (TCP), else a full close.
func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
		return
	}
	_ = c.Close()
}
