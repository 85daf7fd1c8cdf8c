package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/motoserver"
)

// TestInvokeCommand runs `devstack invoke -event events/sqs.json` as `make
// invoke` does: stdout is the function's raw answer, as `sam local invoke -e`
// prints it.
func TestInvokeCommand(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), devstackC, "invoke", "-event", "events/sqs.json")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("devstack invoke: %v\n%s", err, &stderr)
	}
	want := `{"batchItemFailures":[{"itemIdentifier":"7d2e4b8a-6d1f-4c52-9a0e-3f7f1c9b2a11"}]}` + "\n"
	if stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
}

// TestInvokeCommandAWSTarget runs `ZEGO_TARGET=aws devstack invoke` with an
// environment that points the SDK and the function somewhere, as a user's
// would point them at AWS and ZEGO: here, at the shared stack's Secrets
// Manager and ZIM server. The function must run with exactly that environment.
func TestInvokeCommandAWSTarget(t *testing.T) {
	s := shared(t)
	w := newWorld(t, s)
	w.seed("yuri", peer("e2e-aws-target"))
	event := t.TempDir() + "/event.json"
	if err := os.WriteFile(event, direct("yuri", "e2e-aws-target", 0), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(t.Context(), devstackC, "invoke", "-event", event)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"ZEGO_TARGET=aws",
		"ZEGO_SECRET_ID="+s.SecretID(),
		"ZEGO_API_URL="+s.ZIMURL(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+s.SecretsManagerURL(),
		"AWS_REGION="+motoserver.Region,
		"AWS_ACCESS_KEY_ID="+motoserver.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+motoserver.SecretAccessKey,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("devstack invoke: %v\n%s", err, &stderr)
	}
	var got success
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || got.Outcome != "deleted" {
		t.Fatalf("stdout %q, want a deleted answer (%v)\n%s", stdout.String(), err, &stderr)
	}
	assertDeleted(t, w, got.RequestID, "yuri", peer("e2e-aws-target"))
	if strings.Contains(stderr.String(), "ZIM server") || strings.Contains(stderr.String(), "moto_server") {
		t.Errorf("the aws target started local services:\n%s", &stderr)
	}
}
