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
