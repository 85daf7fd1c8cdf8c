package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const (
	testAppID  uint32 = 1234567890
	testSecret        = "c0ffee00c0ffee00c0ffee00c0ffee00"
	rotatedKey        = "5ec2e75ec2e75ec2e75ec2e75ec2e7aa"
)

// inProcess serves a zimtest server without a socket, so that a client
// inside a testing/synctest bubble reaches it on virtual time.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if p := recover(); p != nil { // zimtest drops a connection by aborting its handler
			resp, err = nil, fmt.Errorf("connection dropped: %v", p)
		}
	}()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// fixture is a zimtest server (unstarted: served in process) and a client of
// it; build it inside the synctest bubble when virtual time matters.
type fixture struct {
	srv    *zimtest.Server
	client *zim.Client
	logs   *testutil.Buffer
	log    *slog.Logger
	counts *countLog
}

func newFixture(t *testing.T, rate float64, serverOpts ...zimtest.Option) *fixture {
	t.Helper()
	srv := zimtest.NewUnstartedServer(append([]zimtest.Option{zimtest.WithApp(testAppID, testSecret), zimtest.WithRateLimit(0, time.Second)}, serverOpts...)...)
	client, err := zim.New(zim.StaticCredentials{AppID: testAppID, ServerSecret: testSecret}, zim.WithBaseURL("http://127.0.0.1:1/zim/"), zim.WithRateLimit(rate),
		zim.WithHTTPClient(&http.Client{Transport: inProcess{srv}}),
		zim.WithRetry(zim.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RateLimitedMinBackoff: 2 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	return &fixture{srv: srv, client: client, logs: logs, counts: &countLog{},
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func (f *fixture) job() *Job {
	return &Job{ZIM: f.client, Workers: 4, Log: f.log, Count: f.counts.add}
}

// seed gives user n conversations, every third one a group.
func (f *fixture) seed(user string, n int) {
	convs := make([]zim.Conversation, n)
	for i := range convs {
		convs[i] = zim.Conversation{ConvID: fmt.Sprintf("p%05d", i), ConvType: zim.ConvTypePeer, UpdateTime: int64(1_700_000_000_000 + i)}
		if i%3 == 2 {
			convs[i] = zim.Conversation{ConvID: fmt.Sprintf("#g%05d", i), ConvType: zim.ConvTypeGroup, UpdateTime: int64(1_700_000_000_000 + i)}
		}
	}
	f.srv.Seed(testAppID, user, convs...)
}

func (f *fixture) left(user string) int { return len(f.srv.Conversations(testAppID, user)) }

// calls counts the requests of one action that reached the server.
func (f *fixture) calls(action string) int {
	n := 0
	for _, r := range f.srv.Requests() {
		if r.Action == action {
			n++
		}
	}
	return n
}

// lines returns the job's log lines with the given message.
func (f *fixture) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// countLog is a Job.Count hook that remembers every outcome.
type countLog struct {
	mu sync.Mutex
	n  map[outcome.Outcome]int
}

func (c *countLog) add(o outcome.Outcome, _ *zim.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[outcome.Outcome]int{}
	}
	c.n[o]++
}

func (c *countLog) get(o outcome.Outcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[o]
}

// all is an AllConversations request.
func all(user string) Params {
	return Params{Request: requestAll(user)}
}

// fakeSender keeps what it is asked to send; err, if set, fails every send.
type fakeSender struct {
	mu   sync.Mutex
	sent []Message
	err  error
}

func (s *fakeSender) Send(ctx context.Context, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, m)
	return nil
}

var errSendRefused = errors.New("operation error SQS: SendMessage, https response error StatusCode: 500")

// deadline is a context ending d from now (virtual time inside a bubble).
func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
