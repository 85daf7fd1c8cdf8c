package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
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

// TestInvokeCommandQueueTarget runs `make invoke EVENT=events/sqs.json
// TARGET=queue`: the records' bodies go to the local job queue, the queue
// function answers, and the command says what became of each message.
func TestInvokeCommandQueueTarget(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), devstackC, "invoke", "-event", "events/sqs.json", "-target", "queue")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("devstack invoke: %v\n%s", err, &stderr)
	}
	var answer struct {
		BatchItemFailures []struct{ ItemIdentifier string } `json:"batchItemFailures"`
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &answer) != nil || len(answer.BatchItemFailures) != 1 {
		t.Fatalf("stdout %q, want one answer naming one failed record\n%s", stdout.String(), &stderr)
	}
	out := stderr.String()
	for _, want := range []string{
		"sent 3 message(s) from sqs.json to zim-deleteconv-queue",
		answer.BatchItemFailures[0].ItemIdentifier + " (receive 1): in batchItemFailures: back after the visibility timeout; the function: invalid_request",
		"1 message(s) failed and wait out the visibility timeout (6m10s); after 20 receives",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "(receive 1): succeeded (deleted from the queue); the function: deleted"); n != 2 {
		t.Errorf("%d messages reported deleted, want 2:\n%s", n, out)
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

// TestStackCommand runs `make stack`: it prints the endpoints, which work
// (an invoke through the printed URL deletes a conversation), writes the
// env-vars file for sam local, and stops everything on Ctrl-C.
func TestStackCommand(t *testing.T) {
	cmd := exec.Command(devstackC, "stack")
	cmd.Dir = root
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	endpoints := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		v, _, _ = strings.Cut(v, "  #")
		endpoints[k] = v
		if k == "SAM_ENV_VARS" {
			break
		}
	}
	for _, k := range []string{"ZIM_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB", "ZEGO_JOB_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "API_FUNCTION_INVOKE_URL", "QUEUE_FUNCTION_INVOKE_URL"} {
		if !strings.HasPrefix(endpoints[k], "http://127.0.0.1:") {
			t.Errorf("%s=%q, want a loopback URL (stderr:\n%s)", k, endpoints[k], &stderr)
		}
	}
	admin := zimtest.NewAdminClient(endpoints["ZIM_URL"])
	if err := admin.Seed(t.Context(), 1234567890 /* dev/zim-seed.json's app */, "yara", peer("e2e-stack")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(endpoints["API_FUNCTION_INVOKE_URL"], "application/json", bytes.NewReader(direct("yara", "e2e-stack", 0)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"Outcome":"deleted"`) {
		t.Errorf("invoke through API_FUNCTION_INVOKE_URL: %s", body)
	}
	procs, _ := devstack.Descendants(cmd.Process.Pid) // the api function's bootstrap included

	var env map[string]map[string]string
	if b, err := os.ReadFile(endpoints["SAM_ENV_VARS"]); err != nil || json.Unmarshal(b, &env) != nil {
		t.Fatalf("env-vars file %s: %v", endpoints["SAM_ENV_VARS"], err)
	}
	for fn, floor := range map[string]string{"ApiFunction": "1", "QueueFunction": "0"} {
		e := env[fn]
		if e["ZEGO_JOB_QUEUE_URL"] != endpoints["ZEGO_JOB_QUEUE_URL"] || e["ZEGO_API_URL"] != endpoints["ZIM_URL"] ||
			e["ZEGO_STATE_TABLE"] != endpoints["ZEGO_STATE_TABLE"] || e["ZEGO_STATE_TABLE"] == "" ||
			e["AWS_ENDPOINT_URL_DYNAMODB"] != endpoints["AWS_ENDPOINT_URL_DYNAMODB"] || e["ZEGO_RATE_BUDGET"] != "20" ||
			e["ZEGO_RATE_FLOOR"] != floor || e["ZEGO_RATE_FLOOR_TOTAL"] != "2" || e["ZEGO_RATE_LIMIT"] != "" {
			t.Errorf("env-vars for %s: %v, want the table, its endpoint and the template's budget (floor %s)", fn, e, floor)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("devstack stack after Ctrl-C: %v\n%s", err, &stderr)
	}
	for _, p := range procs {
		if devstack.Running(p.PID) {
			t.Errorf("%s (pid %d) still runs after devstack stack exited", p.Name, p.PID)
		}
	}
}
