package motoserver_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

// TestServerDiesWithItsStarter: a process killed without running Stop (a
// test binary that panics or times out) takes its moto_server with it,
// instead of leaving it running on the machine.
func TestServerDiesWithItsStarter(t *testing.T) {
	t.Parallel()
	starter := exec.Command(os.Args[0], "-test.run=^$")
	starter.Env = append(os.Environ(), starterEnv+"=1")
	out, err := starter.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := starter.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = starter.Process.Kill(); _ = starter.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "moto pid "))
	if err != nil || perr != nil || !devstack.Running(pid) {
		t.Fatalf("starter said %q (%v): want the PID of a running moto_server", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }) // if the test fails

	_ = starter.Process.Kill() // SIGKILL: no cleanup runs in the starter
	_ = starter.Wait()
	// The kernel signals at once; the bound only keeps a failure from hanging.
	guard := time.Now().Add(time.Minute)
	for devstack.Running(pid) {
		if time.Now().After(guard) {
			t.Fatalf("moto_server (pid %d) still runs a minute after the process that started it was killed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
