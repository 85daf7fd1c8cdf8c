package handler

import (
	"context"
	"log/slog"
	"sync"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// panicZIM stands for a bug deep in a dependency.
type panicZIM struct{}

func (panicZIM) DeleteConversation(context.Context, zim.DeleteConvRequest) (*zim.Response, error) {
	panic("index out of range [3] with length 3")
}

func (panicZIM) QueryConversationList(context.Context, string, int, int64) (*zim.ConversationList, error) {
	panic("index out of range [3] with length 3")
}

var errFuzzNoNetwork = &zim.ValidationError{Field: "fuzz", Rule: "no network in fuzzing"}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// panicOnDelete lists through the real client and panics on every deletion.
type panicOnDelete struct{ ZIM }

func (panicOnDelete) DeleteConversation(context.Context, zim.DeleteConvRequest) (*zim.Response, error) {
	panic("nil map write")
}

// failLaterLists serves the first list through the real client and fails the
// ones after it with err.
type failLaterLists struct {
	ZIM
	mu    sync.Mutex
	lists int
	err   error
}

func (f *failLaterLists) QueryConversationList(ctx context.Context, user string, limit int, next int64) (*zim.ConversationList, error) {
	f.mu.Lock()
	f.lists++
	n := f.lists
	f.mu.Unlock()
	if n > 1 {
		return nil, f.err
	}
	return f.ZIM.QueryConversationList(ctx, user, limit, next)
}
