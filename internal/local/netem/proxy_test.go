package netem

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// pipeNet is an in-memory network for testing/synctest bubbles, where real
// sockets do not work: the proxy accepts the client ends that connect
// returns, and each of its dials hands the target's end to targets.
type pipeNet struct {
	accept  chan net.Conn
	targets chan net.Conn
	refuse  bool // dials fail
	done    chan struct{}
	once    sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{accept: make(chan net.Conn), targets: make(chan net.Conn, 16), done: make(chan struct{})}
}

func (n *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-n.accept:
		return c, nil
	case <-n.done:
		return nil, net.ErrClosed
	}
}

func (n *pipeNet) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}

func (n *pipeNet) Addr() net.Addr { return pipeAddr{} }

// connect opens a connection to the proxy and returns the client's end.
func (n *pipeNet) connect() net.Conn {
	client, proxy := net.Pipe()
	n.accept <- proxy
	return client
}

func (n *pipeNet) dial(context.Context) (net.Conn, error) {
	if n.refuse {
		return nil, errors.New("connection refused")
	}
	proxy, target := net.Pipe()
	n.targets <- target
	return proxy, nil
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// startPipe starts a proxy on a new pipeNet; the test must Close it.
func startPipe(link Link) (*Proxy, *pipeNet) {
	n := newPipeNet()
	return serve(n, n.dial, link), n
}

// exchange writes msg to from and reads it from to, returning how long it
// took to arrive.
func exchange(t *testing.T, from, to net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := from.Write([]byte(msg))
		errc <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("reading %q: %v", msg, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("read %q, want %q", got, msg)
	}
	return time.Since(start)
}

// In a synctest bubble the clock is virtual, so the model's delays are
// checked exactly.
func TestRoundTripModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		link Link
	}{
		{"no latency", Link{}},
		{"round trip only", Link{RoundTrip: 60 * time.Millisecond}},
		{"setup and round trip", Link{Setup: 100 * time.Millisecond, RoundTrip: 60 * time.Millisecond}},
		{"odd round trip", Link{Setup: 7 * time.Millisecond, RoundTrip: 3 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				p, n := startPipe(tt.link)
				defer p.Close()
				oneWay := tt.link.RoundTrip / 2
				client := n.connect()
				defer client.Close()
				server := <-n.targets
				defer server.Close()

				// The first request waits for the set-up, then half a round trip.
				if d := exchange(t, client, server, "hello"); d != tt.link.Setup+oneWay {
					t.Errorf("first request took %v, want Setup + RoundTrip/2 = %v", d, tt.link.Setup+oneWay)
				}
				if d := exchange(t, server, client, "world"); d != oneWay {
					t.Errorf("answer took %v, want %v", d, oneWay)
				}
				// A warm request and its answer: one round trip.
				start := time.Now()
				exchange(t, client, server, "again")
				exchange(t, server, client, "answer")
				if d := time.Since(start); d != 2*oneWay {
					t.Errorf("warm round trip took %v, want %v", d, 2*oneWay)
				}
				// The server speaks first after a pause: half a round trip.
				time.Sleep(time.Second)
				if d := exchange(t, server, client, "push"); d != oneWay {
					t.Errorf("server push took %v, want %v", d, oneWay)
				}
			})
		})
	}
}

func TestSetupHoldsBothDirections(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		link := Link{Setup: 100 * time.Millisecond, RoundTrip: 40 * time.Millisecond}
		p, n := startPipe(link)
		defer p.Close()
		client := n.connect()
		defer client.Close()
		server := <-n.targets
		defer server.Close()
		// A server that speaks first is heard no earlier than the set-up's end.
		if d := exchange(t, server, client, "banner"); d != link.Setup+link.RoundTrip/2 {
			t.Errorf("banner took %v, want %v", d, link.Setup+link.RoundTrip/2)
		}
		// Bytes sent during the set-up wait for it, then take a one-way delay.
		client2 := n.connect()
		defer client2.Close()
		server2 := <-n.targets
		defer server2.Close()
		time.Sleep(30 * time.Millisecond)
		if d := exchange(t, client2, server2, "early"); d != link.Setup-30*time.Millisecond+link.RoundTrip/2 {
			t.Errorf("bytes sent 30ms into the set-up took %v, want %v", d, link.Setup-30*time.Millisecond+link.RoundTrip/2)
		}
	})
}

// Traffic both ways at once costs one one-way delay per message, not a round
// trip per change of direction.
func TestFullDuplex(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 50 * time.Millisecond
		p, n := startPipe(Link{RoundTrip: 2 * oneWay})
		defer p.Close()
		client := n.connect()
		defer client.Close()
		server := <-n.targets
		defer server.Close()

		start := time.Now()
		const msgs, gap = 5, 10 * time.Millisecond
		var wg sync.WaitGroup
		arrivals := make([][]time.Duration, 2)
		for i, ends := range [][2]net.Conn{{client, server}, {server, client}} {
			wg.Go(func() { // the writer: one message every gap
				for range msgs {
					if _, err := ends[0].Write([]byte{'m'}); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(gap)
				}
			})
			wg.Go(func() { // the reader on the other side
				b := make([]byte, 1)
				for range msgs {
					if _, err := io.ReadFull(ends[1], b); err != nil {
						t.Error(err)
						return
					}
					arrivals[i] = append(arrivals[i], time.Since(start))
				}
			})
		}
		wg.Wait()
		for dir, got := range arrivals {
			for i, d := range got {
				if want := time.Duration(i)*gap + oneWay; d != want {
					t.Errorf("direction %d, message %d arrived at %v, want %v", dir, i, d, want)
				}
			}
		}
	})
}

func TestBytesIntact(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, n := startPipe(Link{Setup: 5 * time.Millisecond, RoundTrip: 10 * time.Millisecond})
		defer p.Close()
		client := n.connect()
		server := <-n.targets
		go func() { // an echo server
			_, _ = io.Copy(server, server)
			server.Close()
		}()

		// More than the proxy holds in flight, so that it pushes back.
		want := make([]byte, 2*inFlight*chunkSize+12345)
		rand.Read(want)
		go func() {
			_, _ = client.Write(want)
		}()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the echoed bytes differ from those sent")
		}
		// Closing the client ends the connection on the server's side too.
		client.Close()
		synctest.Wait()
		if p.Accepted() != 1 {
			t.Errorf("Accepted = %d, want 1", p.Accepted())
		}
	})
}

func TestCloseDropsDataInFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, n := startPipe(Link{RoundTrip: 2 * time.Second})
		client := n.connect()
		defer client.Close()
		server := <-n.targets
		defer server.Close()
		if _, err := client.Write([]byte("lost")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close waited %v for data in flight", d)
		}
		// Both sides see the connection end, and nothing was delivered.
		if b, err := io.ReadAll(server); len(b) != 0 || err != nil {
			t.Errorf("server read %q, %v; want a clean end with nothing", b, err)
		}
		if _, err := client.Read(make([]byte, 1)); err == nil {
			t.Error("the client's connection is still open after Close")
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		// The bubble fails the test if any of the proxy's goroutines is left.
	})
}

func TestUnreachableTarget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, n := startPipe(Link{Setup: time.Second, RoundTrip: time.Second})
		defer p.Close()
		n.refuse = true
		for i := range 3 {
			client := n.connect()
			if b, err := io.ReadAll(client); len(b) != 0 || err != nil {
				t.Errorf("connection %d: read %q, %v; want it closed at once", i, b, err)
			}
			client.Close()
		}
		if p.Accepted() != 3 {
			t.Errorf("Accepted = %d, want 3", p.Accepted())
		}
	})
}

func TestAcceptedCountsConnections(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, n := startPipe(Link{RoundTrip: time.Millisecond})
		defer p.Close()
		if p.Accepted() != 0 {
			t.Fatalf("Accepted before any connection = %d", p.Accepted())
		}
		var conns []net.Conn
		for range 4 {
			conns = append(conns, n.connect(), <-n.targets)
		}
		if p.Accepted() != 4 {
			t.Errorf("Accepted = %d, want 4", p.Accepted())
		}
		for _, c := range conns {
			c.Close()
		}
	})
}

func TestListenRefusesNegativeLatency(t *testing.T) {
	t.Parallel()
	for _, l := range []Link{{Setup: -1}, {RoundTrip: -time.Millisecond}} {
		if p, err := Listen("127.0.0.1:1", l); err == nil {
			p.Close()
			t.Errorf("Listen with %+v: no error", l)
		}
	}
}
