package handler

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/budget"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// priorityZIM records the budget priority each call's context carries; a
// user has one conversation to list and delete.
type priorityZIM struct {
	mu    sync.Mutex
	calls []string // "delete:urgent", "list:background", ...
}

func (p *priorityZIM) record(what string, ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, what+":"+budget.PriorityOf(ctx).String())
}

func (p *priorityZIM) DeleteConversation(ctx context.Context, _ zim.DeleteConvRequest) (*zim.Response, error) {
	p.record("delete", ctx)
	return &zim.Response{Code: 0, Message: "success", RequestID: "r", Attempts: 1}, nil
}

func (p *priorityZIM) QueryConversationList(ctx context.Context, _ string, _ int, next int64) (*zim.ConversationList, error) {
	p.record("list", ctx)
	l := &zim.ConversationList{Response: zim.Response{Attempts: 1}}
	if next == 0 {
		l.List, l.Next = []zim.Conversation{peer("bob")}, 1
	}
	return l, nil
}

// TestBudgetPriority: a single deletion someone waits for (HTTP, direct
// invoke) is urgent in the shared rate budget; SQS records and every call of
// a job are background.
func TestBudgetPriority(t *testing.T) {
	t.Parallel()
	all := `{"FromUserId":"alice","AllConversations":true}`
	tests := []struct {
		name    string
		payload func(t *testing.T) []byte
		want    []string // the distinct calls made, sorted
	}{
		{"direct", func(*testing.T) []byte { return []byte(body("alice", "bob", 0)) }, []string{"delete:urgent"}},
		{"HTTP API", func(t *testing.T) []byte {
			return httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0)})
		}, []string{"delete:urgent"}},
		{"REST API", func(t *testing.T) []byte {
			return restEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0)})
		}, []string{"delete:urgent"}},
		{"SQS", func(t *testing.T) []byte { return sqsEvent(t, sqsRecord{id: "m-1", body: body("alice", "bob", 0)}) }, []string{"delete:background"}},
		{"direct job", func(*testing.T) []byte { return []byte(all) }, []string{"delete:background", "list:background"}},
		{"HTTP job", func(t *testing.T) []byte {
			return httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: all})
		}, []string{"delete:background", "list:background"}},
		{"SQS job", func(t *testing.T) []byte { return sqsEvent(t, sqsRecord{id: "m-1", body: all}) },
			[]string{"delete:background", "list:background"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			z := &priorityZIM{}
			h := New(z, discardLogger(), nil, "", nil)
			if _, err := h.Invoke(t.Context(), tt.payload(t)); err != nil {
				t.Fatal(err)
			}
			got := slices.Compact(slices.Sorted(slices.Values(z.calls)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("calls %v, want only %v", z.calls, tt.want)
			}
		})
	}
}

// TestBudgetTableErrorsAreCounted: each invocation reports how many budget
// table calls failed since the previous report; none when none did.
func TestBudgetTableErrorsAreCounted(t *testing.T) {
	t.Parallel()
	emf := &testutil.Buffer{}
	failed := 0
	h := New(nil, discardLogger(), outcome.NewMetrics(emf), "", errors.New("unused"),
		WithBudgetErrors(func() int { return failed }))
	for _, step := range []struct{ failed, want int }{{0, 0}, {4, 4}, {4, 0}, {9, 5}} {
		failed = step.failed
		from := len(emf.String())
		_, _ = h.Invoke(t.Context(), []byte(body("alice", "bob", 0)))
		var got []int
		for line := range strings.Lines(emf.String()[from:]) {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("EMF line %q: %v", line, err)
			}
			if n, ok := l[outcome.BudgetTableErrorsMetric].(float64); ok {
				got = append(got, int(n))
			}
		}
		switch {
		case step.want == 0 && len(got) != 0:
			t.Errorf("after %d failures: lines %v, want none", step.failed, got)
		case step.want > 0 && (len(got) != 1 || got[0] != step.want):
			t.Errorf("after %d failures: lines %v, want one counting %d", step.failed, got, step.want)
		}
	}
}

// TestBudgetWaitsAreReported: each invocation writes how long its calls
// waited for their budget slots, up to 100 values a line, and nothing when
// none did.
func TestBudgetWaitsAreReported(t *testing.T) {
	t.Parallel()
	emf := &testutil.Buffer{}
	var pending []time.Duration
	h := New(nil, discardLogger(), outcome.NewMetrics(emf), "", errors.New("unused"),
		WithBudgetWaits(func() []time.Duration { w := pending; pending = nil; return w }))
	for _, n := range []int{0, 3, 150} {
		pending = make([]time.Duration, n)
		for i := range pending {
			pending[i] = time.Duration(i) * time.Millisecond
		}
		from := len(emf.String())
		_, _ = h.Invoke(t.Context(), []byte(body("alice", "bob", 0)))
		var got []float64
		lines := 0
		for line := range strings.Lines(emf.String()[from:]) {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("EMF line %q: %v", line, err)
			}
			if vs, ok := l[outcome.BudgetWaitMetric].([]any); ok {
				lines++
				for _, v := range vs {
					got = append(got, v.(float64))
				}
			}
		}
		if len(got) != n || lines != (n+99)/100 {
			t.Errorf("%d waits: %d values in %d lines, want %d in %d", n, len(got), lines, n, (n+99)/100)
		}
		for i, v := range got {
			if v != float64(i) {
				t.Errorf("%d waits: value %d is %v ms, want %d", n, i, v, i)
				break
			}
		}
	}
}
