package secret_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

// One moto_server serves every test that needs no server of its own; each
// test uses its own secret names. It starts on first use.
var shared motoserver.Shared

func TestMain(m *testing.M) {
	testenv.Require(testenv.MotoServer)
	shared.RunTests(m)
}

// sharedMoto returns a Secrets Manager client for the shared server.
func sharedMoto(t *testing.T) *secretsmanager.Client {
	t.Helper()
	return motoClient(t, shared.Server(t))
}

func motoClient(t *testing.T, srv *motoserver.Server) *secretsmanager.Client {
	t.Helper()
	cfg, err := srv.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
}

var nameSeq atomic.Int64

// secretName makes base unique on the shared server, so that -count=N runs
// do not collide.
func secretName(base string) string {
	return fmt.Sprintf("%s-%d", base, nameSeq.Add(1))
}

func createSecret(t *testing.T, sm *secretsmanager.Client, name, value string) string {
	t.Helper()
	out, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return aws.ToString(out.ARN)
}

func TestMotoFetchAndCache(t *testing.T) {
	t.Parallel()
	sm := sharedMoto(t)
	name := secretName("moto/fetch-and-cache")
	arn := createSecret(t, sm, name, `{"AppId": "1234567890", "ServerSecret": "`+secretA+`", "description": "prod"}`)

	// By name and by ARN, as ZEGO_SECRET_ID allows both.
	for _, id := range []string{name, arn} {
		c := secret.NewCache(sm, id, time.Minute)
		for i := range 5 {
			got, err := c.Credentials(t.Context())
			if err != nil || got != credsA {
				t.Fatalf("%s: call %d: AppId %d, %v; want credsA", id, i, got.AppID, err)
			}
		}
		if n := c.Fetches(); n != 1 {
			t.Errorf("%s: Fetches = %d after 5 calls, want 1", id, n)
		}
	}
}

func TestMotoRotation(t *testing.T) {
	t.Parallel()
	sm := sharedMoto(t)
	name := secretName("moto/rotation")
	createSecret(t, sm, name, secretJSON(credsA))
	c := secret.NewCache(sm, name, time.Hour, secret.WithMinRefreshInterval(time.Nanosecond))
	if got, err := c.Credentials(t.Context()); err != nil || got != credsA {
		t.Fatalf("Credentials = %v; want credsA", err)
	}

	if _, err := sm.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(secretJSON(credsB))}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	// The cache still serves the old value until ZEGO refuses it.
	if got, _ := c.Credentials(t.Context()); got != credsA {
		t.Errorf("Credentials before Refresh changed without a fetch")
	}
	got, err := c.Refresh(t.Context(), credsA)
	if err != nil || got != credsB {
		t.Fatalf("Refresh = %v; want the rotated credentials", err)
	}
	if got, err := c.Credentials(t.Context()); err != nil || got != credsB {
		t.Errorf("Credentials after Refresh = %v; want the rotated credentials", err)
	}
	if n := c.Fetches(); n != 2 {
		t.Errorf("Fetches = %d, want 2", n)
	}
}

func TestMotoConfigurationErrors(t *testing.T) {
	t.Parallel()
	sm := sharedMoto(t)
	var (
		missing   = secretName("moto/does-not-exist")
		deleted   = secretName("moto/deleted")
		malformed = secretName("moto/malformed-json")
		noField   = secretName("moto/missing-field")
		badAppID  = secretName("moto/bad-appid")
		binary    = secretName("moto/binary")
	)
	createSecret(t, sm, malformed, `{"AppId": 1234567890, "ServerSecret": "`+secretA+`"`)
	createSecret(t, sm, noField, `{"AppId": 1234567890, "serverSecret": "`+secretA+`"}`)
	createSecret(t, sm, badAppID, `{"AppId": "app-1", "ServerSecret": "`+secretA+`"}`)
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(binary), SecretBinary: []byte(secretJSON(credsA))}); err != nil {
		t.Fatal(err)
	}
	createSecret(t, sm, deleted, secretJSON(credsA))
	if _, err := sm.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(deleted), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		id        string
		wantCode  string // AWS error code, or "" for a value error
		wantField string
	}{
		{id: missing, wantCode: "ResourceNotFoundException"},
		{id: deleted, wantCode: "InvalidRequestException"},
		{id: malformed, wantField: "SecretString"},
		{id: noField, wantField: "ServerSecret"},
		{id: badAppID, wantField: "AppId"},
		{id: binary, wantField: "SecretString"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			c := secret.NewCache(sm, tt.id, time.Minute)
			_, err := c.Credentials(t.Context())
			if !errors.Is(err, secret.ErrConfiguration) {
				t.Fatalf("error = %v, want ErrConfiguration", err)
			}
			var api smithy.APIError
			if tt.wantCode != "" && (!errors.As(err, &api) || api.ErrorCode() != tt.wantCode) {
				t.Errorf("error = %v, want AWS code %s", err, tt.wantCode)
			}
			var fe *secret.FieldError
			if tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField) {
				t.Errorf("error = %v, want it to name field %s", err, tt.wantField)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.id) {
				t.Errorf("error %q does not name the secret", msg)
			}
			assertNoSecret(t, "error", msg)
			// Not cached: the next call asks again.
			_, _ = c.Credentials(t.Context())
			if n := c.Fetches(); n != 2 {
				t.Errorf("Fetches = %d after two failing calls, want 2", n)
			}
		})
	}
}

// A role without secretsmanager:GetSecretValue is a configuration error. moto
// answers the denial as HTTP 403 (see motoserver.Server.EnforceIAM), so this
// covers the status-based path; the AccessDeniedException code path is in
// TestErrorClassesOverTheWire.
func TestMotoAccessDenied(t *testing.T) {
	t.Parallel()
	srv := motoserver.StartT(t) // IAM enforcement is server-wide
	admin := motoClient(t, srv)
	createSecret(t, admin, "moto/denied", secretJSON(credsA))
	id, key, err := srv.CreateIAMUser(t.Context(), "deleteconv-function")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnforceIAM(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg, err := srv.AWSConfigWithCredentials(t.Context(), id, key)
	if err != nil {
		t.Fatal(err)
	}
	c := secret.NewCache(secretsmanager.NewFromConfig(cfg), "moto/denied", time.Minute)
	_, err = c.Credentials(t.Context())
	if !errors.Is(err, secret.ErrConfiguration) {
		t.Fatalf("error = %v, want ErrConfiguration", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "secretsmanager:GetSecretValue permission on moto/denied") {
		t.Errorf("error %q does not say which permission to check", msg)
	}
}

// With moto stopped (connection refused through the real SDK), a refresh past
// the TTL is answered with the cached credentials during the grace period, and
// is ErrUnavailable once it is over or when it is turned off.
func TestMotoStopped(t *testing.T) {
	t.Parallel()
	srv := motoserver.StartT(t)
	sm := motoClient(t, srv)
	createSecret(t, sm, "moto/stopped", secretJSON(credsA))
	const ttl, grace = time.Minute, 10 * time.Minute
	clk := newClock()
	caches := map[string]*secret.Cache{
		"within the grace period": secret.NewCache(sm, "moto/stopped", ttl, secret.WithClock(clk.Now), secret.WithStaleGrace(grace)),
		"grace period over":       secret.NewCache(sm, "moto/stopped", ttl, secret.WithClock(clk.Now), secret.WithStaleGrace(ttl)),
		"grace period off":        secret.NewCache(sm, "moto/stopped", ttl, secret.WithClock(clk.Now), secret.WithStaleGrace(0)),
	}
	for name, c := range caches {
		if got, err := c.Credentials(t.Context()); err != nil || got != credsA {
			t.Fatalf("%s: Credentials while running = %v; want credsA", name, err)
		}
	}

	srv.Stop()
	clk.Add(2 * ttl)
	// Served at once while the refresh runs, then, once it has failed,
	// counted as stale: call until the refresh's failure shows (the SDK
	// retries a refused connection a few times first).
	within := caches["within the grace period"]
	for deadline := time.Now().Add(time.Minute); within.StaleServed() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got, err := within.Credentials(t.Context())
		if err != nil || got != credsA {
			t.Fatalf("within the grace period: Credentials = %v; want the cached credsA", err)
		}
	}
	if n := within.StaleServed(); n == 0 {
		t.Errorf("within the grace period: StaleServed = 0 after the refresh failed, want more")
	}
	if n := within.Fetches(); n != 2 {
		t.Errorf("within the grace period: Fetches = %d, want 2 (one refresh; retries wait the minimum interval)", n)
	}
	for _, name := range []string{"grace period over", "grace period off"} {
		_, err := caches[name].Credentials(t.Context())
		if !errors.Is(err, secret.ErrUnavailable) {
			t.Fatalf("%s: error = %v, want ErrUnavailable", name, err)
		}
		if errors.Is(err, secret.ErrConfiguration) {
			t.Errorf("%s: error also matches ErrConfiguration: %v", name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "could not reach Secrets Manager") {
			t.Errorf("%s: error %q does not say Secrets Manager was unreachable", name, msg)
		}
	}
}

// The SDK client is a GetSecretValueAPI.
var _ secret.GetSecretValueAPI = (*secretsmanager.Client)(nil)
