package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

// The stack is tested with stand-ins for the function and the ZIM server
// (testdata/echofn, testdata/fakezim), so its plumbing is checked on its own;
// e2e/ drives the real ones.
var (
	buildOnce sync.Once
	echofn    string
	fakezim   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	testenv.Require(testenv.MotoServer)
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func standIns(t *testing.T) (root, fn, zim string) {
	t.Helper()
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devstack-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		echofn = filepath.Join(dir, "echofn")
		fakezim = filepath.Join(dir, "fakezim")
		for pkg, out := range map[string]string{"./internal/local/devstack/testdata/echofn": echofn, "./internal/local/devstack/testdata/fakezim": fakezim} {
			if buildErr = goBuild(root, pkg, out); buildErr != nil {
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return root, echofn, fakezim
}

func startStandIns(t *testing.T, fc devstack.FunctionConfig) *devstack.Stack {
	t.Helper()
	root, fn, zim := standIns(t)
	s, err := devstack.Start(t.Context(), devstack.Config{
		Root:      root,
		Bootstrap: fn,
		ZIMServer: zim,
		LogDir:    t.TempDir(),
		Function:  fc,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type echo struct {
	Env        map[string]string `json:"env"`
	RequestID  string            `json:"requestId"`
	DeadlineIn string            `json:"deadlineIn"`
}

func invokeEcho(t *testing.T, f interface {
	Invoke(context.Context, []byte) (devstack.InvokeResult, error)
}, event string) (devstack.InvokeResult, echo) {
	t.Helper()
	res, err := f.Invoke(t.Context(), []byte(event))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", event, err)
	}
	var e echo
	if !res.FunctionError {
		if err := json.Unmarshal(res.Body, &e); err != nil {
			t.Fatalf("Invoke(%s): body %s: %v", event, res.Body, err)
		}
	}
	return res, e
}

func TestStackRunsFunctionWithContractEnvironment(t *testing.T) {
	t.Setenv("AWS_PROFILE", "developers-own")
	t.Setenv("ZEGO_RATE_LIMIT", "99")
	s := startStandIns(t, devstack.FunctionConfig{Timeout: 3 * time.Second, Env: []string{"LOG_LEVEL=debug"}})

	res, e := invokeEcho(t, s, `{"log": "hello", "env": ["ZEGO_API_URL", "ZEGO_SECRET_ID", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_REGION",
		"AWS_LAMBDA_FUNCTION_NAME", "LOG_LEVEL", "AWS_PROFILE", "ZEGO_RATE_LIMIT"]}`)
	if res.FunctionError {
		t.Fatalf("function error %s: %s", res.ErrorType, res.ErrorMessage)
	}
	want := map[string]string{
		"ZEGO_API_URL":             s.ZIMURL(),
		"ZEGO_SECRET_ID":           devstack.DefaultSecretName,
		"AWS_REGION":               "us-east-1",
		"AWS_LAMBDA_FUNCTION_NAME": devstack.FunctionName + "-api",
		"LOG_LEVEL":                "debug",
		"AWS_PROFILE":              "", // the developer's own settings stay out
		"ZEGO_RATE_LIMIT":          "",
	}
	for k, v := range want {
		if e.Env[k] != v {
			t.Errorf("function env %s = %q, want %q", k, e.Env[k], v)
		}
	}
	if !strings.HasPrefix(s.ZIMURL(), "http://127.0.0.1:") {
		t.Errorf("ZIMURL = %q, want a loopback URL", s.ZIMURL())
	}
	if ep := e.Env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]; !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Errorf("AWS_ENDPOINT_URL_SECRETS_MANAGER = %q, want the local moto_server", ep)
	}
	if !strings.HasPrefix(s.Function().URL, "http://127.0.0.1:") {
		t.Errorf("emulator URL = %q, want a loopback URL", s.Function().URL)
	}
	if e.DeadlineIn != "3s" {
		t.Errorf("deadline seen by the function in %s, want 3s", e.DeadlineIn)
	}
	if e.RequestID != res.RequestID || res.RequestID == "" {
		t.Errorf("function saw request id %q, InvokeResult.RequestID = %q", e.RequestID, res.RequestID)
	}
	if !res.ColdStart {
		t.Error("first invocation: ColdStart = false")
	}
	if len(res.Logs) != 1 || res.Logs[0].String("msg") != "hello" || res.Logs[0].String("requestId") != res.RequestID {
		t.Errorf("Logs = %v, want the one line the function wrote for this invocation", res.Logs)
	}

	// The secret holds the seed's first app.
	out, err := s.SecretsManager().GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretID())})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	var secret struct {
		AppId        uint32
		ServerSecret string
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &secret); err != nil {
		t.Fatal(err)
	}
	if secret.AppId != s.AppID() || secret.AppId != 1234567890 || len(secret.ServerSecret) != 32 {
		t.Errorf("secret = AppId %d with a %d-character ServerSecret, want the seed's app %d", secret.AppId, len(secret.ServerSecret), s.AppID())
	}

	res, _ = invokeEcho(t, s, `{"log": "again"}`)
	if res.ColdStart {
		t.Error("second invocation: ColdStart = true")
	}
}

func TestInvokeSerialisesConcurrentCallers(t *testing.T) {
	s := startStandIns(t, devstack.FunctionConfig{})
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Go(func() {
			res, err := s.Invoke(t.Context(), []byte(`{"sleep": "20ms"}`))
			if err != nil || res.FunctionError {
				t.Errorf("invocation %d: %v %s", i, err, res.Body)
				return
			}
			var e echo
			_ = json.Unmarshal(res.Body, &e)
			ids[i] = e.RequestID
		})
	}
	wg.Wait()
	slices.Sort(ids)
	if len(slices.Compact(ids)) != 6 {
		t.Errorf("request ids %q: want 6 distinct answers", ids)
	}
}

func TestInvokeReportsFunctionErrorsAndTimeouts(t *testing.T) {
	s := startStandIns(t, devstack.FunctionConfig{Timeout: time.Second})

	res, err := s.Invoke(t.Context(), []byte(`{"fail": "boom"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.FunctionError || res.ErrorType != "errorString" || res.ErrorMessage != "boom" {
		t.Errorf("failing function: FunctionError %v, ErrorType %q, ErrorMessage %q; body %s", res.FunctionError, res.ErrorType, res.ErrorMessage, res.Body)
	}

	res, err = s.Invoke(t.Context(), []byte(`{"sleep": "2s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.FunctionError || res.ErrorType != devstack.TimedOutErrorType {
		t.Errorf("function past its deadline: FunctionError %v, ErrorType %q; body %s", res.FunctionError, res.ErrorType, res.Body)
	}

	res, e := invokeEcho(t, s, `{}`)
	if res.FunctionError || e.RequestID != res.RequestID {
		t.Errorf("invocation after a timeout: %s", res.Body)
	}
}

func TestCloseLeavesNoProcess(t *testing.T) {
	s := startStandIns(t, devstack.FunctionConfig{})
	if _, err := s.StartFunction(t.Context(), devstack.FunctionConfig{Name: "second"}); err != nil {
		t.Fatal(err)
	}
	invokeEcho(t, s, `{}`) // the emulator starts the bootstrap on the first invocation

	procs := s.Processes()
	var names []string
	for _, p := range procs {
		names = append(names, p.Name)
	}
	for _, want := range []string{"zimserver", "moto_server", "api", "second", "echofn"} {
		if !slices.Contains(names, want) {
			t.Errorf("Processes() = %q, want one named %q", names, want)
		}
	}
	for _, p := range procs {
		if !devstack.Running(p.PID) {
			t.Errorf("%s (%d) is not running before Close", p.Name, p.PID)
		}
	}

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, p := range procs {
		if devstack.Running(p.PID) {
			t.Errorf("%s (pid %d) still runs after Close", p.Name, p.PID)
		}
	}
	if got := s.Processes(); len(got) != 0 {
		t.Errorf("Processes() after Close = %v, want none", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Invoke(t.Context(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Close succeeded")
	}
}

// progressHook calls fn with each progress line.
type progressHook func(string)

func (h progressHook) Write(p []byte) (int, error) { h(string(p)); return len(p), nil }

func TestFailedStartStopsWhatItStarted(t *testing.T) {
	root, fn, zim := standIns(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var seen []int
	// When the emulator is about to start, the ZIM server and moto_server run:
	// note them, then make the start fail by cancelling its context.
	hook := progressHook(func(line string) {
		if strings.Contains(line, "starting the Lambda Runtime Interface Emulator") {
			seen = descendantsOfTest(t)
			cancel()
		}
	})
	s, err := devstack.Start(ctx, devstack.Config{Root: root, Bootstrap: fn, ZIMServer: zim, LogDir: t.TempDir(), Progress: hook})
	if err == nil {
		_ = s.Close()
		t.Fatal("Start succeeded with a cancelled context")
	}
	if len(seen) < 2 {
		t.Fatalf("processes running when the emulator was about to start: %v, want the ZIM server and moto_server", seen)
	}
	for _, pid := range seen {
		if devstack.Running(pid) {
			t.Errorf("pid %d still runs after the failed Start (%v)", pid, err)
		}
	}
}

func TestStartNamesMissingMotoServer(t *testing.T) {
	root, fn, zim := standIns(t)
	seed := filepath.Join(root, "dev", "zim-seed.json")
	t.Setenv("PATH", t.TempDir())
	_, err := devstack.Start(t.Context(), devstack.Config{Root: t.TempDir(), Bootstrap: fn, ZIMServer: zim, Seed: seed})
	if err == nil || !strings.Contains(err.Error(), "moto_server") {
		t.Errorf("Start without moto_server: %v, want an error naming moto_server", err)
	}
}

// A developer's own aws-lambda-rie on PATH must not replace the pinned one.
func TestStartIgnoresAnEmulatorOnPATH(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, devstack.RIEBinary)
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho not the pinned emulator >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	root, _, _ := standIns(t)
	rie, err := devstack.FindRIE(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	if rie == fake || filepath.Base(rie) != devstack.RIEBinary {
		t.Errorf("FindRIE = %s, want the pinned build, not %s", rie, fake)
	}
	s := startStandIns(t, devstack.FunctionConfig{})
	if res, _ := invokeEcho(t, s, `{}`); res.FunctionError {
		t.Errorf("invocation with a fake emulator on PATH: %s", res.Body)
	}
}

func descendantsOfTest(t *testing.T) []int {
	t.Helper()
	procs, err := devstack.Descendants(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	return pids
}

func goBuild(root, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
