package motoserver

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// atomicScript serves moto_server with DynamoDB writes made atomic, as
// DynamoDB's own are: moto checks a condition and writes without a lock, one
// thread per request, so two concurrent conditional writes could both pass
// (the shared rate budget would then hand one slot out twice).
//
//go:embed atomic.py
var atomicScript []byte

// atomicCommand is the interpreter and arguments that run atomicScript: the
// python3 on PATH, which is moto_server's own (pip installs it beside it).
// The script goes to one file per content in the temp directory, written
// once and shared by every process.
func atomicCommand() (string, []string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", nil, fmt.Errorf("%w (python3, which runs it, is not on PATH)", ErrNotFound)
	}
	sum := sha256.Sum256(atomicScript)
	path := filepath.Join(os.TempDir(), "motoserver-atomic-"+hex.EncodeToString(sum[:6])+".py")
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, atomicScript) {
		return py, []string{path}, nil
	}
	tmp, err := os.CreateTemp(os.TempDir(), "motoserver-atomic-*.py")
	if err != nil {
		return "", nil, fmt.Errorf("motoserver: %w", err)
	}
	_, werr := tmp.Write(atomicScript)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Rename(tmp.Name(), path)); err != nil {
		os.Remove(tmp.Name())
		return "", nil, fmt.Errorf("motoserver: writing %s: %w", path, err)
	}
	return py, []string{path}, nil
}
