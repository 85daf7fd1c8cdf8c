package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

// TestLatencyColdBatchConnections runs a cold SQS batch of 10 through the
// real bootstrap, with the ZIM server on HTTPS behind the default latency
// profile, and counts the connections the function opens to it: over HTTP/2
// the init warm-up's connection carries the whole batch (at most 2), over
// HTTP/1.1 each request in flight needs one of its own. Counts, not timings,
// are asserted; docs/performance.md has the timings.
func TestLatencyColdBatchConnections(t *testing.T) {
	prof := netem.DefaultProfile()
	cfg := config("latency", devstack.FunctionConfig{})
	cfg.TLS, cfg.Latency = true, &prof
	s, err := devstack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	admin := s.Admin()

	for i, tc := range []struct {
		name, user, proto string
		env               []string
		maxConns          int
	}{
		{"HTTP/2", "latency-h2", "HTTP/2.0", nil, 2},
		// The client offers only http/1.1, as against a server without HTTP/2.
		{"HTTP/1.1", "latency-h1", "HTTP/1.1", []string{"GODEBUG=http2client=0"}, 10},
	} {
		if i > 0 {
			// The previous batch leaves the ZIM server's one-second rate window,
			// so that no retry of a throttled request opens a connection.
			time.Sleep(time.Second)
		}
		t.Run(tc.name, func(t *testing.T) {
			user := tc.user
			var recs [][2]string
			for i := range 10 {
				c := peer(fmt.Sprintf("lat-%02d", i))
				if err := admin.Seed(t.Context(), s.AppID(), user, c); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, [2]string{fmt.Sprintf("lat-msg-%02d", i), string(direct(user, c.ConvID, c.ConvType))})
			}
			if err := admin.ResetRequests(t.Context()); err != nil {
				t.Fatal(err)
			}
			f, err := s.StartFunction(t.Context(), devstack.FunctionConfig{
				Name: uniqueName("latency-batch"),
				Env:  append([]string{"LOG_LEVEL=debug"}, tc.env...),
			})
			if err != nil {
				t.Fatal(err)
			}

			before := s.ZEGOConnections()
			res := invoke(t, f, sqsBatch(t, recs...))
			opened := s.ZEGOConnections() - before
			if !res.ColdStart {
				t.Fatal("the batch did not start the function: not a cold batch")
			}
			if failed := batchFailures(t, res); len(failed) != 0 {
				t.Fatalf("batch item failures %v: %s", failed, res.Body)
			}
			reqs, err := admin.Requests(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			deleted := 0
			for _, r := range reqs {
				if r.Action == "DeleteConv" && r.Code == 0 && r.FromUserID == user {
					deleted++
				}
			}
			if deleted != 10 {
				t.Errorf("the ZIM server deleted %d conversations, want the batch's 10", deleted)
			}

			// The init warm-up's connection, and the protocol it settled on.
			i := slices.IndexFunc(f.Logs(), func(l devstack.LogRecord) bool { return l.String("msg") == "zim: preconnect" })
			if i < 0 {
				t.Fatalf("no preconnect log line in the function's output; logs in %s", s.LogDir())
			}
			if got := f.Logs()[i].String("protocol"); got != tc.proto {
				t.Errorf("the warm-up's connection spoke %s, want %s", got, tc.proto)
			}
			t.Logf("%s: %d connection(s) opened for a cold batch of 10", tc.name, opened)
			if opened < 1 || opened > tc.maxConns {
				t.Errorf("a cold batch of 10 opened %d connections to ZEGO over %s, want 1 to %d", opened, tc.name, tc.maxConns)
			}
		})
	}
}
