package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// Round trips of the simulated network, in the synctest bubble's time.
const (
	zegoRoundTrip = 100 * time.Millisecond // each request to ZEGO; a TCP handshake too
	smRoundTrip   = 30 * time.Millisecond  // one GetSecretValue
)

// pipeNet is an in-memory network to one server: each dial costs a TCP
// handshake's round trip and is counted. net.Pipe keeps every goroutine
// durably blocked, as testing/synctest needs.
type pipeNet struct {
	mu     sync.Mutex
	dials  int
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (n *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	select {
	case <-time.After(zegoRoundTrip):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	client, server := net.Pipe()
	select {
	case n.conns <- server:
	case <-n.closed:
		return nil, net.ErrClosed
	}
	n.mu.Lock()
	n.dials++
	n.mu.Unlock()
	return client, nil
}

func (n *pipeNet) Dials() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials
}

// Accept, Close and Addr make pipeNet the server's net.Listener.
func (n *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.closed:
		return nil, net.ErrClosed
	}
}

func (n *pipeNet) Close() error {
	n.once.Do(func() { close(n.closed) })
	return nil
}

func (n *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }

// countingSM is Secrets Manager answering after smRoundTrip.
type countingSM struct {
	mu    sync.Mutex
	calls int
	value string
}

func (s *countingSM) GetSecretValue(ctx context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	select {
	case <-time.After(smRoundTrip):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s.value)}, nil
}

func (s *countingSM) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// TestWarmUpProvisioned: an instance initialised ahead (provisioned
// concurrency) and first called 10 minutes later, past the secret's 5-minute
// TTL, pays one round trip to ZEGO: no wait for Secrets Manager, no new
// connection. Ten minutes after that, the same again (the connection stays
// pooled longer than net/http's 90 s default).
func TestWarmUpProvisioned(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		zego := zimtest.NewUnstartedServer(zimtest.WithApp(testAppID, testSecret))
		zego.Seed(testAppID, "alice", peer("bob-1"), peer("bob-2"), peer("bob-3"))
		pn := newPipeNet()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(zegoRoundTrip) // the request and its answer cross the network
			zego.ServeHTTP(w, r)
		})}
		go func() { _ = srv.Serve(pn) }()
		defer func() {
			_ = srv.Close()
			synctest.Wait()
		}()

		sm := &countingSM{value: fmt.Sprintf(`{"AppId": %d, "ServerSecret": %q}`, testAppID, testSecret)}
		cache := secret.NewCache(sm, "zego/deleteconv", 5*time.Minute)
		client, err := zim.New(cache, zim.WithBaseURL("http://127.0.0.1:9"), zim.WithDialContext(pn.dial))
		if err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		warmUp(t.Context(), cache, client, initWarmUp)
		if took := time.Since(start); took != max(zegoRoundTrip, smRoundTrip) {
			t.Errorf("init took %v, want the longer of the connection (%v) and the secret (%v), overlapped", took, zegoRoundTrip, smRoundTrip)
		}
		if n := len(zego.Requests()); n != 0 {
			t.Errorf("init sent %d requests to ZEGO, want none", n)
		}

		for i, conv := range []string{"bob-1", "bob-2"} {
			time.Sleep(10 * time.Minute)
			start := time.Now()
			resp, err := client.DeleteConversation(t.Context(), zim.DeleteConvRequest{FromUserID: "alice", ConvID: conv, ConvType: zim.ConvTypePeer})
			took := time.Since(start)
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			// One round trip; the first call also checks, for at most a
			// millisecond, that the connection opened in init is still open.
			if took < zegoRoundTrip || took > zegoRoundTrip+time.Millisecond {
				t.Errorf("call %d, 10 minutes after the last: took %v, want one round trip (%v)", i+1, took, zegoRoundTrip)
			}
			if resp.Attempts != 1 {
				t.Errorf("call %d: %d attempts, want 1", i+1, resp.Attempts)
			}
			if n := pn.Dials(); n != 1 {
				t.Errorf("call %d: %d connections opened since init, want init's one", i+1, n)
			}
			synctest.Wait() // the background refresh ends
			if n := sm.Calls(); n != 2+i {
				t.Errorf("call %d: %d GetSecretValue calls, want %d (init, then one background refresh per call past the TTL)", i+1, n, 2+i)
			}
		}
		if n := len(zego.Requests()); n != 2 {
			t.Errorf("ZEGO saw %d requests, want 2", n)
		}
	})
}
