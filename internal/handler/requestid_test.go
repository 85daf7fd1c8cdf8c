package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/logctx"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// flakySM is a Secrets Manager that answers the test secret until it is
// told to fail.
type flakySM struct {
	mu  sync.Mutex
	err error
}

func (f *flakySM) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *flakySM) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{VersionId: aws.String("v1"),
		SecretString: aws.String(fmt.Sprintf(`{"AppId": %d, "ServerSecret": %q}`, testAppID, testSecret))}, nil
}

// TestEveryLineCarriesTheRequestID: in production the logger is wrapped in
// logctx, and an invocation's lines written by the ZIM client (a retry) and
// by the secret cache (stale credentials served) carry its request id, and a
// job's its job id, and an SQS record's its message id, exactly once; so
// does the outcome line.
func TestEveryLineCarriesTheRequestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		payload string
		job     bool
	}{
		{"single deletion", `{"FromUserId":"alice","ConvId":"bob","ConvType":0}`, false},
		{"job", `{"FromUserId":"alice","AllConversations":true}`, true},
		{"SQS record", `{"Records":[{"messageId":"m-logs-1","eventSource":"aws:sqs","body":"{\"FromUserId\":\"alice\",\"ConvId\":\"bob\",\"ConvType\":0}"}]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := zimtest.NewUnstartedServer(zimtest.WithApp(testAppID, testSecret), zimtest.WithRateLimit(0, time.Second))
			baseURL, transport := inProcessZIM(srv, 0)
			t.Cleanup(srv.Close)
			srv.Seed(testAppID, "alice", peer("bob"), peer("carol"))

			logs := &syncBuffer{}
			log := slog.New(logctx.NewHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			sm := &flakySM{}
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			cache := secret.NewCache(sm, "zego", time.Minute, secret.WithLogger(log), secret.WithClock(func() time.Time { return now }))
			client, err := zim.New(cache, zim.WithBaseURL(baseURL), transport, zim.WithLogger(log),
				zim.WithRetry(zim.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
			if err != nil {
				t.Fatal(err)
			}
			h := New(client, log, outcome.NewMetrics(&syncBuffer{}), "", nil)

			// As in init: credentials cached, no request id yet. Then the TTL
			// passes and Secrets Manager fails, so the call is served stale.
			if _, err := cache.Credentials(t.Context()); err != nil {
				t.Fatal(err)
			}
			sm.fail(errors.New("dial tcp: connection refused"))
			now = now.Add(2 * time.Minute)
			srv.Inject(zimtest.Fault{Action: "DeleteConv", Code: 1}) // temporary: retried once
			from := len(logs.String())

			ctx := lambdacontext.NewContext(t.Context(), &lambdacontext.LambdaContext{AwsRequestID: "req-logs-1"})
			if _, err := h.Invoke(ctx, []byte(tc.payload)); err != nil {
				t.Fatal(err)
			}

			seen := map[string]bool{}
			lines := strings.Split(strings.TrimSpace(logs.String()[from:]), "\n")
			for _, line := range lines {
				var m map[string]any
				mustUnmarshal(t, []byte(line), &m)
				msg, _ := m["msg"].(string)
				seen[msg] = true
				if n := strings.Count(line, `"requestId":`); n != 1 || m["requestId"] != "req-logs-1" {
					t.Errorf("line has %d requestId keys (want 1, req-logs-1): %s", n, line)
				}
				if strings.HasPrefix(tc.name, "SQS") && strings.Count(line, `"messageId":"m-logs-1"`) != 1 {
					t.Errorf("SQS record's line without its messageId once: %s", line)
				}
				if tc.job && strings.HasPrefix(msg, "zim: ") {
					if n := strings.Count(line, `"jobId":`); n != 1 || m["jobId"] == "" {
						t.Errorf("job's client line has %d jobId keys (want 1): %s", n, line)
					}
				}
			}
			for _, want := range []string{"zim: retrying", "secret: fetch failed, serving the cached credentials past their TTL", "request outcome"} {
				if !seen[want] {
					t.Errorf("no %q line among:\n%s", want, strings.Join(lines, "\n"))
				}
			}
		})
	}
}
