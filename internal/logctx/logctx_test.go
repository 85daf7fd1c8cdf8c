package logctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/logctx"
)

func TestHandlerAddsContextAttrs(t *testing.T) {
	t.Parallel()
	inv := logctx.With(context.Background(), slog.String("requestId", "req-1"))
	job := logctx.With(inv, slog.String("jobId", "job-1"))
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
		want string // the line, keys after "level" and "msg"
	}{
		{"context attrs added", func(l *slog.Logger) { l.InfoContext(inv, "m", "k", 1) },
			`{"k":1,"requestId":"req-1"}`},
		{"nested contexts add up", func(l *slog.Logger) { l.LogAttrs(job, slog.LevelInfo, "m") },
			`{"requestId":"req-1","jobId":"job-1"}`},
		{"a later value replaces an earlier one", func(l *slog.Logger) {
			l.InfoContext(logctx.With(job, slog.String("requestId", "req-2")), "m")
		}, `{"jobId":"job-1","requestId":"req-2"}`},
		{"the record's own key wins", func(l *slog.Logger) { l.InfoContext(inv, "m", "requestId", "own") },
			`{"requestId":"own"}`},
		{"the logger's own key wins", func(l *slog.Logger) { l.With("requestId", "own").InfoContext(job, "m") },
			`{"requestId":"own","jobId":"job-1"}`},
		{"after WithGroup, attributes land in the group (documented limit)", func(l *slog.Logger) {
			l.WithGroup("g").With("requestId", "own").InfoContext(inv, "m")
		}, `{"g":{"requestId":"own","requestId":"req-1"}}`},
		{"no context, nothing added", func(l *slog.Logger) { l.Info("m") }, `{}`},
		{"a context without attrs", func(l *slog.Logger) { l.InfoContext(context.Background(), "m") }, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := slog.New(logctx.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
						return slog.Attr{}
					}
					return a
				},
			})))
			tc.log(l)
			if got := strings.TrimSpace(buf.String()); got != tc.want {
				t.Errorf("line %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRecordSharedByTwoHandlers: adding to a record must not change what
// another handler given the same record sees.
func TestRecordSharedByTwoHandlers(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	ha := logctx.NewHandler(slog.NewJSONHandler(&a, nil))
	hb := slog.NewJSONHandler(&b, nil)
	ctx := logctx.With(t.Context(), slog.String("requestId", "req-1"))
	r := slog.NewRecord(testTime, slog.LevelInfo, "m", 0)
	r.AddAttrs(slog.Int("k", 1))
	if err := ha.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := hb.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	var la, lb map[string]any
	if err := json.Unmarshal(a.Bytes(), &la); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &lb); err != nil {
		t.Fatal(err)
	}
	if la["requestId"] != "req-1" || lb["requestId"] != nil {
		t.Errorf("wrapped line %v, plain line %v: want the request id in the wrapped one only", la, lb)
	}
}

func TestWithNothingKeepsContext(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if logctx.With(ctx) != ctx {
		t.Error("With without attributes made a new context")
	}
	if logctx.Attrs(ctx) != nil {
		t.Error("a plain context carries attributes")
	}
}

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
