// Package e2e drives the real bootstrap through AWS's Lambda Runtime Interface
// Emulator, beside the local ZIM server (cmd/zimserver) and a local Secrets
// Manager (moto_server), the way `make demo` runs them: every sample event,
// then ZEGO faults, secret rotation, a missing secret and a deadline shorter
// than ZEGO's answer. Tests assert the function's answers and what the ZIM
// server saw, and that no process outlives the stack.
//
// They need moto_server (from the README's Python tools); without it they
// fail with one line saying so. The emulator is built from tools/go.mod.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

var (
	root      string
	bootstrap string // the function, built for this machine
	zimserver string
	devstackC string // cmd/devstack

	sharedOnce  sync.Once
	sharedStack *devstack.Stack
	sharedErr   error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	testenv.Require(testenv.MotoServer)
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
		return 1
	}
	var err error
	if root, err = devstack.FindRoot("."); err != nil {
		return fail("%v", err)
	}

	// Built once, into a folder of the test run's own: the demo command that
	// TestDemoCommand runs builds (and runs) its own copies under build/.
	dir, err := os.MkdirTemp("", "zim-deleteconv-e2e-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := devstack.FindRIE(ctx, root); err != nil {
		return fail("%v", err)
	}
	if bootstrap, err = devstack.BuildFunction(ctx, root, dir); err != nil {
		return fail("%v", err)
	}
	if zimserver, err = devstack.BuildZIMServer(ctx, root, dir); err != nil {
		return fail("%v", err)
	}
	devstackC = filepath.Join(dir, "devstack")
	if err := devstack.GoBuild(ctx, root, "./cmd/devstack", devstackC); err != nil {
		return fail("%v", err)
	}

	code := m.Run()
	if sharedStack != nil {
		if err := sharedStack.Close(); err != nil {
			return fail("closing the shared stack: %v", err)
		}
	}
	return code
}

// config is a stack configuration with the prebuilt binaries and its logs
// under build/devstack/e2e/name (kept after the run, for a failing test).
func config(name string, fc devstack.FunctionConfig) devstack.Config {
	return devstack.Config{
		Root:      root,
		Bootstrap: bootstrap,
		ZIMServer: zimserver,
		LogDir:    filepath.Join(root, "build", "devstack", "e2e", name),
		Function:  fc,
	}
}

// functionSeq numbers the extra functions started on the shared stack, whose
// names must be unique for as long as it runs (-count=N runs the tests again
// on the same stack).
var functionSeq atomic.Int64

// uniqueName is base with a sequence number.
func uniqueName(base string) string { return fmt.Sprintf("%s-%d", base, functionSeq.Add(1)) }

// shared is the stack the tests that do not interfere share: started on first
// use, closed by TestMain. Each test resets the ZIM server's request log.
func shared(t *testing.T) *devstack.Stack {
	t.Helper()
	sharedOnce.Do(func() {
		sharedStack, sharedErr = devstack.Start(context.Background(), config("shared", devstack.FunctionConfig{}))
	})
	if sharedErr != nil {
		t.Fatalf("starting the shared stack: %v", sharedErr)
	}
	return sharedStack
}
