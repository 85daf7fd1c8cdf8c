package outcome

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	api := func(code int) error {
		return fmt.Errorf("zim: DeleteConv: %w", &zim.APIError{Action: "DeleteConv", Code: code, Message: "m", RequestID: "r", HTTPStatus: 200})
	}
	// The shape of the zim client's errors: what the credentials source said, wrapped.
	creds := func(err error) error { return fmt.Errorf("zim: DeleteConv: getting credentials: %w", err) }
	transport := fmt.Errorf("zim: DeleteConv: %w: %w", zim.ErrTransport, errors.New("connection reset by peer"))
	transportCut := fmt.Errorf("zim: DeleteConv: %w: %w", zim.ErrTransport, context.DeadlineExceeded)
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want Outcome
	}{
		{"no error", live, nil, Deleted},
		{"not found", live, api(660800002), AlreadyDeleted},
		{"ZEGO: invalid parameter", live, api(660000002), InvalidRequest},
		{"ZEGO: rate limited", live, api(660300005), Throttled},
		{"no limiter slot before the deadline", live, fmt.Errorf("zim: DeleteConv: %w", zim.ErrThrottled), Throttled},
		{"ZEGO: signature invalid", live, api(100000005), ConfigurationError},
		{"setting missing", live, &config.Error{Variable: "ZEGO_SECRET_ID", Rule: "is required"}, ConfigurationError},
		{"secret not found", live, creds(fmt.Errorf("%w: not found", secret.ErrConfiguration)), ConfigurationError},
		{"ZEGO: other code", live, api(660500002), UpstreamError},
		{"ZEGO: deadline while waiting for the answer", done, fmt.Errorf("zim: DeleteConv: %w", context.DeadlineExceeded), Timeout},
		// zim's own transport errors: unavailable, unless the deadline cut the call short.
		{"transport: connection reset", live, transport, Unavailable},
		{"transport: connection reset as the deadline passed", done, transport, Timeout},
		{"transport: cut by the deadline", done, transportCut, Timeout},
		// Secrets Manager: unavailable however slow, since nothing reached ZEGO.
		{"secret: throttled", live, creds(fmt.Errorf("%w: throttled", secret.ErrUnavailable)), Unavailable},
		{"secret: caller's deadline passed while waiting", done, creds(fmt.Errorf("%w: gave up waiting", secret.ErrUnavailable)), Unavailable},
		{"secret: the wait's error wraps the context's", done, creds(fmt.Errorf("%w: gave up waiting: %w", secret.ErrUnavailable, context.DeadlineExceeded)), Unavailable},
		{"secret: fetch past its own timeout", live, creds(fmt.Errorf("%w: did not answer in time: %w", secret.ErrUnavailable, context.DeadlineExceeded)), Unavailable},
		{"secret: refresh after 100000005 failed", live, fmt.Errorf("zim: DeleteConv: refreshing credentials after %v: %w", "invalid signature", fmt.Errorf("%w: internal", secret.ErrUnavailable)), Unavailable},
	}
	for _, tt := range tests {
		if got := Classify(tt.ctx, tt.err); got != tt.want {
			t.Errorf("%s: Classify = %s, want %s", tt.name, got, tt.want)
		}
	}
}
