package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

// TestCloseLeavesNoProcess starts a stack of its own, makes the emulator start
// the bootstrap, and checks that Close ends every process: the ZIM server,
// moto_server, each emulator and each bootstrap (which the emulator runs in a
// process group of its own).
func TestCloseLeavesNoProcess(t *testing.T) {
	s, err := devstack.Start(t.Context(), config("lifecycle", devstack.FunctionConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	second, err := s.StartFunction(t.Context(), devstack.FunctionConfig{Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	directSuccess(t, invoke(t, s, sample(t, "direct.json")))
	invoke(t, second, sample(t, "direct.json"))

	procs := s.Processes()
	count := map[string]int{}
	for _, p := range procs {
		count[p.Name]++
	}
	want := map[string]int{"zimserver": 1, "moto_server": 1, "api": 1, "second": 1, "bootstrap": 2}
	for name, n := range want {
		if count[name] != n {
			t.Errorf("%d processes named %s, want %d (all: %v)", count[name], name, n, procs)
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
	if left, _ := devstack.Descendants(os.Getpid()); slices.ContainsFunc(left, func(p devstack.Process) bool { return slices.Contains(pids(procs), p.PID) }) {
		t.Errorf("processes left: %v", left)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func pids(procs []devstack.Process) []int {
	var out []int
	for _, p := range procs {
		out = append(out, p.PID)
	}
	return out
}

// TestDemoCommand runs `devstack demo` as `make demo` does, with a job small
// enough for one round: it must exit 0, report every sample with the bad SQS
// record failed, show what the ZIM server saw, and the job finishing through
// the queue with its rate at ZEGO.
func TestDemoCommand(t *testing.T) {
	samples, err := devstack.Samples(filepath.Join(root, "events"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), devstackC, "demo", "-job", "40")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("devstack demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		"ok   events/direct.json (direct): deleted, ZEGO Code 0",
		"ok   events/apigw-http.json (HTTP API): deleted, HTTP 200, ZEGO Code 0",
		"ok   events/apigw-rest.json (REST API): deleted, HTTP 200, ZEGO Code 0",
		"ok   events/sqs.json (SQS): 2 succeeded, 1 failed",
		"record 7d2e4b8a-6d1f-4c52-9a0e-3f7f1c9b2a11: in batchItemFailures: invalid_request",
		"The local ZIM server saw ",
		"DeleteConv FromUserId=alice ConvId=bob ConvType=0: HTTP 200, Code 0",
		"DeleteConv FromUserId=carol ConvId=#team-7 ConvType=2: HTTP 200, Code 0",
		fmt.Sprintf("All %d samples behaved as expected.", len(samples)),
		"A job through the local queue: 40 conversations of support-bot",
		"round   1 on queue-",
		"40 of 40 deleted, succeeded (deleted from the queue)",
		"ok   job: 40 conversations deleted in ",
		"job rate: ", "deletions/s from the first deletion to the last", "of ZEGO's 20/s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if secret := seedSecret(t); strings.Contains(out+stderr.String(), secret) {
		t.Error("the demo printed the ServerSecret")
	}
}

// TestDemoCommandInterrupted sends Ctrl-C's SIGINT to `devstack demo` once its
// stack is up, and checks that every process it started is gone when it exits.
func TestDemoCommandInterrupted(t *testing.T) {
	cmd := exec.Command(devstackC, "demo")
	cmd.Dir = root
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Every process seen below devstack while it runs, the bootstrap included
	// (the emulator starts it on the first invocation).
	seen := map[int]devstack.Process{}
	watch := func() {
		procs, _ := devstack.Descendants(cmd.Process.Pid)
		for _, p := range procs {
			seen[p.PID] = p
		}
	}
	sc := bufio.NewScanner(stderr)
	ready := false
	var log []string
	for sc.Scan() {
		log = append(log, sc.Text())
		if strings.Contains(sc.Text(), "devstack: ready") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("devstack demo never got ready: %v\n%s", cmd.Wait(), strings.Join(log, "\n"))
	}
	watch()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for sc.Scan() {
			log = append(log, sc.Text())
		}
		done <- cmd.Wait()
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-done:
			break wait
		case <-tick.C:
			watch()
		case <-timeout.C:
			t.Fatal("devstack demo did not exit within 30 s of SIGINT")
		}
	}

	var exit *exec.ExitError
	switch {
	case waitErr == nil:
		t.Log("the demo finished before the signal arrived; checking its processes anyway")
	case errors.As(waitErr, &exit) && exit.ExitCode() == 130:
	default:
		t.Errorf("devstack demo exited with %v after SIGINT, want status 130\n%s", waitErr, strings.Join(log, "\n"))
	}
	names := map[string]bool{}
	for _, p := range seen {
		names[p.Name] = true
		if devstack.Running(p.PID) {
			t.Errorf("%s (pid %d) still runs after devstack exited", p.Name, p.PID)
		}
	}
	for _, want := range []string{"zimserver", "aws-lambda-rie"} {
		if !names[want] {
			t.Errorf("never saw %s below devstack (saw %v)", want, names)
		}
	}
}

func seedSecret(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(root + "/dev/zim-seed.json")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"ServerSecret": "`))
	if i < 0 {
		t.Fatal("no ServerSecret in dev/zim-seed.json")
	}
	rest := b[i+len(`"ServerSecret": "`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}
