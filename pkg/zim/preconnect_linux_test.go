package zim_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// preconnectChildURL, when set in the environment, makes
// TestPreconnectAgainstZimtest the child process: a Client with the default
// HTTP client (trusting the server through SSL_CERT_FILE, as a deployed
// function would), Preconnect, a line on stdout, then two calls once a line
// arrives on stdin.
const preconnectChildURL = "ZIM_TEST_PRECONNECT_URL"

const (
	zimtestApp    uint32 = 1234567890
	zimtestSecret        = "00112233445566778899aabbccddeeff"
)

// acceptCounter counts the connections a listener accepts; accepted is
// closed at the first.
type acceptCounter struct {
	net.Listener
	n        atomic.Int64
	once     sync.Once
	accepted chan struct{}
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
		l.once.Do(func() { close(l.accepted) })
	}
	return c, err
}

// TestPreconnectAgainstZimtest: against zimtest servers offering plain
// HTTP/1.1, HTTPS with HTTP/1.1 only, and HTTPS with HTTP/2, Preconnect opens
// exactly one connection and sends no request, and the two calls after it
// use that connection.
func TestPreconnectAgainstZimtest(t *testing.T) {
	if base := os.Getenv(preconnectChildURL); base != "" {
		preconnectChild(t, base)
		return
	}
	t.Parallel()
	tests := []struct {
		name       string
		tls, http2 bool
	}{
		{"plain HTTP/1.1", false, false},
		{"HTTPS HTTP/1.1 only", true, false},
		{"HTTPS HTTP/2", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []zimtest.Option{zimtest.WithApp(zimtestApp, zimtestSecret)}
			if !tt.http2 {
				opts = append(opts, zimtest.WithoutHTTP2())
			}
			s := zimtest.NewUnstartedServer(opts...)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			counted := &acceptCounter{Listener: l, accepted: make(chan struct{})}
			s.Listener = counted
			env := []string{preconnectChildURL + "=" + "placeholder"}
			if tt.tls {
				s.StartTLS()
				ca := filepath.Join(t.TempDir(), "ca.pem")
				if err := os.WriteFile(ca, s.CertificatePEM(), 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "SSL_CERT_FILE="+ca, "SSL_CERT_DIR="+t.TempDir())
			} else {
				s.Start()
			}
			t.Cleanup(s.Close)
			env[0] = preconnectChildURL + "=" + s.URL
			s.Seed(zimtestApp, "alice", zim.Conversation{ConvID: "bob-1", ConvType: zim.ConvTypePeer},
				zim.Conversation{ConvID: "bob-2", ConvType: zim.ConvTypePeer})

			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPreconnectAgainstZimtest$", "-test.count=1")
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "SSL_CERT_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, env...)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			out := bufio.NewReader(stdout)
			var seen strings.Builder
			for !strings.Contains(seen.String(), "preconnected\n") {
				line, err := out.ReadString('\n')
				seen.WriteString(line)
				if err != nil {
					_ = cmd.Wait()
					t.Fatalf("the child ended before Preconnect returned:\n%s%s", seen.String(), stderr.String())
				}
			}
			// Over plain TCP the client's connect returns before the
			// server's Accept does: wait for it (bounded, in case there is none).
			select {
			case <-counted.accepted:
			case <-time.After(time.Minute):
				t.Fatal("Preconnect returned, and the server accepted no connection")
			}
			if n := counted.n.Load(); n != 1 {
				t.Errorf("after Preconnect: %d connections, want 1", n)
			}
			if n := len(s.Requests()); n != 0 {
				t.Errorf("after Preconnect: %d requests, want none", n)
			}
			if _, err := io.WriteString(stdin, "go\n"); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(out)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v\n%s%s%s", err, seen.String(), rest, stderr.String())
			}
			if n := counted.n.Load(); n != 1 {
				t.Errorf("after two calls: %d connections, want Preconnect's one", n)
			}
			if n := len(s.Requests()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

func preconnectChild(t *testing.T, base string) {
	c, err := zim.New(zim.StaticCredentials{AppID: zimtestApp, ServerSecret: zimtestSecret}, zim.WithBaseURL(base))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Preconnect(t.Context()); err != nil {
		t.Fatalf("Preconnect: %v", err)
	}
	os.Stdout.WriteString("preconnected\n")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("waiting for the parent: %v", err)
	}
	for _, conv := range []string{"bob-1", "bob-2"} {
		resp, err := c.DeleteConversation(t.Context(), zim.DeleteConvRequest{FromUserID: "alice", ConvID: conv, ConvType: zim.ConvTypePeer})
		if err != nil {
			t.Fatalf("DeleteConversation %s: %v", conv, err)
		}
		if resp.Attempts != 1 {
			t.Errorf("DeleteConversation %s: %d attempts, want 1", conv, resp.Attempts)
		}
	}
}
