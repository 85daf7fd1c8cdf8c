package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// ModulePath is the module this stack belongs to; FindRoot looks for it.
const ModulePath = "github.com/zim-deleteconv/zim-deleteconv"

// Packages built by the stack, relative to the module root.
const (
	FunctionPackage  = "./functions/deleteconv"
	ZIMServerPackage = "./cmd/zimserver"
)

// FindRoot returns the module root at or above dir: the directory whose go.mod
// declares ModulePath.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && declaresModule(b, ModulePath) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("devstack: no go.mod for %s at or above %s: run this from the project's checkout", ModulePath, dir)
		}
	}
}

func declaresModule(gomod []byte, path string) bool {
	for line := range strings.Lines(string(gomod)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == path {
			return true
		}
	}
	return false
}

// BinDir is where the stack's programs are built, under the ignored build/ folder.
func BinDir(root string) string { return filepath.Join(root, "build", "devstack", "bin") }

// BuildFunction builds the function's bootstrap for this machine, the way the
// Makefile builds it for Lambda (no cgo, -tags lambda.norpc, -trimpath), into
// dir/bootstrap, and returns its path. go build only relinks when a source
// changed, so calling it on every start is cheap.
func BuildFunction(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	return out, GoBuild(ctx, root, FunctionPackage, out, "-tags", "lambda.norpc")
}

// BuildZIMServer builds the local ZIM server into dir/zimserver.
func BuildZIMServer(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "zimserver")
	return out, GoBuild(ctx, root, ZIMServerPackage, out)
}

// GoBuild builds the main package pkg of the module at root into out, for
// this machine, with cgo off and -trimpath (as the Lambda build), plus flags.
func GoBuild(ctx context.Context, root, pkg, out string, flags ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("devstack: the go command is not on PATH")
	}
	args := append([]string{"build", "-trimpath"}, flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	// Built for this machine, whatever GOOS/GOARCH the caller exported.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("devstack: go build %s: %w\n%s", pkg, err, strings.TrimSpace(output.String()))
	}
	return nil
}

// ToolsModfile is the tools module, relative to the module root: its tool
// directives pin the emulator and staticcheck, and its go.sum checks them.
const ToolsModfile = "tools/go.mod"

// rieBuild is one process's build of the emulator for one module root.
type rieBuild struct {
	done chan struct{}
	path string
	err  error
}

var (
	rieMu     sync.Mutex
	rieBuilds = map[string]*rieBuild{}
)

// FindRIE returns the path of the emulator pinned in root's tools module,
// built for this machine by `go tool -n`, which caches the binary in the Go
// build cache (about a minute the first time, then instant). An
// aws-lambda-rie on PATH is never used. Each process builds it once; across
// processes (test binaries running in parallel) a lock file under root/build
// lets one build while the others wait and then find it cached.
func FindRIE(ctx context.Context, root string) (string, error) {
	b := startRIEBuild(root)
	select {
	case <-b.done:
		return b.path, b.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// startRIEBuild starts this process's build of root's emulator unless it has
// started already, and returns it.
func startRIEBuild(root string) *rieBuild {
	rieMu.Lock()
	defer rieMu.Unlock()
	b, ok := rieBuilds[root]
	if !ok {
		b = &rieBuild{done: make(chan struct{})}
		rieBuilds[root] = b
		go func() {
			b.path, b.err = buildRIE(root)
			close(b.done)
		}()
	}
	return b
}

func buildRIE(root string) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("devstack: building the pinned %s (go tool -modfile=%s -n %s): %w", RIEBinary, ToolsModfile, RIEBinary, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fail(errors.New("the go command is not on PATH"))
	}
	lockDir := filepath.Join(root, "build")
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fail(err)
	}
	lock, err := os.OpenFile(filepath.Join(lockDir, ".tools.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fail(err)
	}
	defer lock.Close() // closing releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fail(err)
	}
	cmd := exec.Command(goBin, "tool", "-modfile="+filepath.Join(root, ToolsModfile), "-n", RIEBinary)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fail(fmt.Errorf("%w\n%s", err, strings.TrimSpace(stderr.String())))
	}
	path := strings.TrimSpace(stdout.String())
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return fail(fmt.Errorf("it printed %q, which is not a file", path))
	}
	return path, nil
}
