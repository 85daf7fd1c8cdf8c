package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

// TestSecretRotation rotates the app's ServerSecret on the ZIM server and in
// Secrets Manager while the function holds the old one cached: ZEGO answers
// "invalid signature" once, the function fetches the secret again and the
// deletion succeeds in the same invocation.
func TestSecretRotation(t *testing.T) {
	s := shared(t)
	w := newWorld(t, s)
	w.seed("vic", peer("e2e-before"), peer("e2e-after"))
	directSuccess(t, invoke(t, s, direct("vic", "e2e-before", 0))) // the old secret is now cached

	var b [16]byte
	_, _ = rand.Read(b[:])
	rotated := hex.EncodeToString(b[:])
	if err := w.admin.SetSecret(t.Context(), w.app, rotated); err != nil {
		t.Fatal(err)
	}
	value, err := devstack.SecretJSON(w.app, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SecretsManager().PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(s.SecretID()), SecretString: aws.String(value),
	}); err != nil {
		t.Fatal(err)
	}

	res := invoke(t, s, direct("vic", "e2e-after", 0))
	got := directSuccess(t, res)
	if got.Outcome != "deleted" {
		t.Errorf("answer after rotation %+v, want deleted", got)
	}
	reqs := w.deletes()[1:]
	if len(reqs) != 2 || reqs[0].SignatureValid || reqs[0].Code != 100000005 || !reqs[1].SignatureValid || reqs[1].Code != 0 {
		t.Errorf("ZIM server saw %v after the rotation, want a stale signature (100000005), then a valid one", reqs)
	}
	if w.has("vic", peer("e2e-after")) {
		t.Error("the conversation is still stored")
	}
	for _, line := range s.Function().Output() {
		if strings.Contains(line, rotated) {
			t.Fatalf("the function wrote the ServerSecret: %s", line)
		}
	}
	if strings.Contains(string(res.Body), rotated) {
		t.Fatal("the answer holds the ServerSecret")
	}
}

// TestMissingSecret runs a second function whose ZEGO_SECRET_ID names no
// secret: every trigger fails with a configuration error, nothing reaches ZEGO.
func TestMissingSecret(t *testing.T) {
	s := shared(t)
	const missing = "zim-deleteconv/e2e-no-such-secret"
	f, err := s.StartFunction(t.Context(), devstack.FunctionConfig{Name: uniqueName("missing-secret"), Env: []string{"ZEGO_SECRET_ID=" + missing}})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, s)
	w.seed("wes", peer("e2e-kept"))

	res := invoke(t, f, direct("wes", "e2e-kept", 0))
	if !res.FunctionError || res.ErrorType != "ConfigurationError" {
		t.Errorf("direct: %s, want a ConfigurationError", res.Body)
	}

	resp := apiAnswer(t, invoke(t, f, httpAPI(t, direct("wes", "e2e-kept", 0))))
	var e apiError
	if err := json.Unmarshal([]byte(resp.Body), &e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusInternalServerError || e.Error.Code != "ConfigurationError" {
		t.Errorf("HTTP API: %d %s, want 500 ConfigurationError", resp.StatusCode, resp.Body)
	}
	if strings.Contains(resp.Body, missing) {
		t.Errorf("HTTP API body %s names the secret: the details belong in the log only", resp.Body)
	}

	sqs := invoke(t, f, sqsBatch(t, [2]string{"m-1", string(direct("wes", "e2e-kept", 0))}))
	if got := batchFailures(t, sqs); len(got) != 1 || got[0] != "m-1" {
		t.Errorf("SQS: batchItemFailures %q, want the record", got)
	}

	if reqs := w.deletes(); len(reqs) != 0 {
		t.Errorf("ZIM server saw %v, want nothing", reqs)
	}
	if !w.has("wes", peer("e2e-kept")) {
		t.Error("the conversation is gone")
	}
	if line := outcomeLine(res, "", ""); line == nil || line.String("outcome") != "configuration_error" {
		t.Errorf("log line %v, want outcome configuration_error", line)
	}
}
