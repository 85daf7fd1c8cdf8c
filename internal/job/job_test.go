package job

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const (
	testAppID  uint32 = 1234567890
	testSecret        = "c0ffee00c0ffee00c0ffee00c0ffee00"
)

// panicOn panics when asked to delete one conversation, as a bug in a dependency would.
type panicOn struct {
	ZIM
	convID string
}

func (p panicOn) DeleteConversation(ctx context.Context, req zim.DeleteConvRequest) (*zim.Response, error) {
	if req.ConvID == p.convID {
		panic("nil map write")
	}
	return p.ZIM.DeleteConversation(ctx, req)
}

// TestRun deletes more than the 1000 conversations one listing shows, and
// tells its hooks about the ones it could not delete without stopping.
func TestRun(t *testing.T) {
	t.Parallel()
	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret), zimtest.WithRateLimit(0, time.Second))
	t.Cleanup(srv.Close)
	convs := make([]zim.Conversation, 1100)
	for i := range convs {
		convs[i] = zim.Conversation{ConvID: fmt.Sprintf("p%04d", i), ConvType: zim.ConvTypePeer, UpdateTime: int64(1_700_000_000_000 + i)}
	}
	srv.Seed(testAppID, "erin", convs...)
	srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "p0007", Code: 660500002})
	client, err := zim.New(zim.StaticCredentials{AppID: testAppID, ServerSecret: testSecret}, zim.WithBaseURL(srv.URL), zim.WithRateLimit(1000))
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	notDeleted := map[string]outcome.Outcome{}
	j := Job{
		ZIM: panicOn{ZIM: client, convID: "p0042"}, Workers: 4,
		Recovered: func(p any) error { return fmt.Errorf("recovered: %v", p) },
		NotDeleted: func(user string, c zim.Conversation, o outcome.Outcome, err error) {
			mu.Lock()
			defer mu.Unlock()
			notDeleted[c.ConvID] = o
		},
	}
	r := j.Run(t.Context(), "erin")

	s := r.Summary
	if s == nil || s.Deleted != 1098 || s.Failed != 2 || !s.Complete || r.Outcome == outcome.Deleted {
		t.Fatalf("result %+v, summary %+v", r, s)
	}
	if len(notDeleted) != 2 || notDeleted["p0007"] != outcome.UpstreamError || notDeleted["p0042"] != outcome.InternalError {
		t.Errorf("NotDeleted saw %v", notDeleted)
	}
	if left := srv.Conversations(testAppID, "erin"); len(left) != 2 {
		t.Errorf("%d conversations left, want the two that failed", len(left))
	}
}
