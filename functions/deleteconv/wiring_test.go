package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/handler"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// motoForFunction starts a moto_server and points this process's environment
// at it, as the function's would be; create makes a secret in it.
func motoForFunction(t *testing.T) (*motoserver.Server, *secretsmanager.Client, func(name, value string)) {
	t.Helper()
	moto := motoserver.StartT(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	awsCfg, err := moto.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	create := func(name, value string) {
		t.Helper()
		if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	return moto, sm, create
}

// TestWiringThroughSecretsManager builds the handler exactly as main does,
// from the environment, against moto's Secrets Manager (the real AWS
// protocol) and a zimtest server.
func TestWiringThroughSecretsManager(t *testing.T) {
	moto, sm, create := motoForFunction(t)
	create("zim/good", `{"AppId": 1234567890, "ServerSecret": "`+testSecret+`"}`)
	create("zim/bad", `{"AppId": "12x", "ServerSecret": "`+testSecret+`"}`)

	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret))
	t.Cleanup(srv.Close)
	logs := &testutil.Buffer{}
	newHandler := func(secretID string) *handler.Handler {
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"ZEGO_SECRET_ID": secretID, "ZEGO_API_URL": srv.URL}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return build(t.Context(), cfg, nil, slog.New(slog.NewJSONHandler(logs, nil)), logs)
	}
	call := func(h *handler.Handler, payload string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return h.Invoke(ctx, []byte(payload))
	}

	good := newHandler("zim/good")
	srv.Seed(testAppID, "alice", peer("bob"), peer("carol"))
	if _, err := call(good, body("alice", "bob", 0)); err != nil {
		t.Fatalf("first invocation: %v", err)
	}

	// Rotation: the secret and ZEGO change together; the cached secret is now
	// wrong, ZEGO answers 100000005 and the function fetches the new one at once.
	if _, err := sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String("zim/good"),
		SecretString: aws.String(`{"AppId": "1234567890", "ServerSecret": "` + rotatedKey + `"}`)}); err != nil {
		t.Fatal(err)
	}
	srv.SetSecret(testAppID, rotatedKey)
	if out, err := call(good, body("alice", "carol", 0)); err != nil || !strings.Contains(string(out), `"deleted"`) {
		t.Fatalf("after rotation: %s, %v", out, err)
	}

	tests := []struct {
		secretID, errorType, want string
	}{
		{"zim/missing", "ConfigurationError", "zim/missing"},
		{"zim/bad", "ConfigurationError", "AppId"},
	}
	for _, tt := range tests {
		_, err := call(newHandler(tt.secretID), body("alice", "dave", 0))
		ie := functionError(t, err)
		if ie.Type != tt.errorType || !strings.Contains(ie.Message, tt.want) {
			t.Errorf("%s: got %+v, want %s naming %q", tt.secretID, ie, tt.errorType, tt.want)
		}
	}

	// Secrets Manager gone from the start (init's prefetch fails too):
	// unavailable, and the next invocation tries again.
	moto.Stop()
	down := newHandler("zim/good")
	_, err := call(down, body("alice", "dave", 0))
	if ie := functionError(t, err); ie.Type != "Unavailable" {
		t.Errorf("Secrets Manager down: got %+v, want Unavailable", ie)
	}

	all := logs.String()
	for _, s := range []string{testSecret, rotatedKey} {
		if strings.Contains(all, s) {
			t.Fatalf("a ServerSecret reached the logs")
		}
	}
}

func TestWiringConfigurationErrorFailsEveryInvocation(t *testing.T) {
	t.Parallel()
	_, cfgErr := config.Load(func(k string) string { return map[string]string{"ZEGO_RATE_LIMIT": "50"}[k] })
	h := build(t.Context(), config.Config{}, cfgErr, slog.New(slog.DiscardHandler), io.Discard)
	for range 2 {
		_, err := h.Invoke(t.Context(), []byte(body("alice", "bob", 0)))
		ie := functionError(t, err)
		if ie.Type != "ConfigurationError" || !strings.Contains(ie.Message, "ZEGO_SECRET_ID") || !strings.Contains(ie.Message, "ZEGO_RATE_LIMIT") {
			t.Fatalf("got %+v, want a ConfigurationError naming both variables", ie)
		}
	}
}

// TestWiringSecretsManagerAccessDenied: the function's role may not read the
// secret. moto enforces IAM here; the answer is a configuration error that
// says what to check, on every trigger, and the SQS record goes back to the queue.
func TestWiringSecretsManagerAccessDenied(t *testing.T) {
	moto, _, create := motoForFunction(t)
	create("zim/locked", `{"AppId": 1234567890, "ServerSecret": "`+testSecret+`"}`)
	keyID, key, err := moto.CreateIAMUser(t.Context(), "deleteconv-without-policy")
	if err != nil {
		t.Fatal(err)
	}
	if err := moto.EnforceIAM(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", key)

	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret))
	t.Cleanup(srv.Close)
	srv.Seed(testAppID, "alice", peer("bob"))
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"ZEGO_SECRET_ID": "zim/locked", "ZEGO_API_URL": srv.URL}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	h := build(t.Context(), cfg, nil, slog.New(slog.NewJSONHandler(logs, nil)), logs)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	_, err = h.Invoke(ctx, []byte(body("alice", "bob", 0)))
	ie := functionError(t, err)
	t.Logf("access denied: %s", ie.Message)
	if ie.Type != "ConfigurationError" || !strings.Contains(ie.Message, "zim/locked") {
		t.Errorf("direct: got %+v, want a ConfigurationError naming the secret", ie)
	}
	out, err := h.Invoke(ctx, sqsEvent(t, sqsRecord{id: "m-1", body: body("alice", "bob", 0)}))
	if got := decodeSQS(t, out, err); len(got) != 1 || got[0] != "m-1" {
		t.Errorf("SQS: batchItemFailures = %v, want m-1", got)
	}
	out, err = h.Invoke(ctx, httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "bob", 0)}))
	if a := decodeHTTPAPI(t, out, err); a.status != 500 {
		t.Errorf("HTTP API: status %d, want 500", a.status)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests reached ZEGO without credentials", n)
	}
	if strings.Contains(logs.String(), testSecret) || strings.Contains(logs.String(), key) {
		t.Errorf("a secret reached the logs")
	}
}
