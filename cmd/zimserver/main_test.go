package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// The app of dev/zim-seed.json.
const (
	seedFile          = "../../dev/zim-seed.json"
	seedApp    uint32 = 1234567890
	seedSecret        = "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15"
)

var client = &http.Client{Timeout: time.Minute}

// deleteConv sends a DeleteConv signed by hand and returns the answer's Code
// and the signature it used.
func deleteConv(t *testing.T, base string, appID uint32, secret, from, conv string, typ int) (int, string) {
	t.Helper()
	return deleteConvWith(t, client, base, appID, secret, from, conv, typ)
}

// deleteConvWith is deleteConv with the HTTP client hc.
func deleteConvWith(t *testing.T, hc *http.Client, base string, appID uint32, secret, from, conv string, typ int) (int, string) {
	t.Helper()
	nonce := fmt.Sprintf("%016x", time.Now().UnixNano())
	ts := time.Now().Unix()
	sum := md5.Sum([]byte(fmt.Sprintf("%d%s%s%d", appID, nonce, secret, ts)))
	sig := hex.EncodeToString(sum[:])
	q := url.Values{
		"Action": {"DeleteConv"}, "AppId": {strconv.FormatUint(uint64(appID), 10)},
		"SignatureNonce": {nonce}, "Timestamp": {strconv.FormatInt(ts, 10)},
		"SignatureVersion": {"2.0"}, "Signature": {sig},
	}
	body := fmt.Sprintf(`{"FromUserId":%q,"ConvId":%q,"ConvType":%d}`, from, conv, typ)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct{ Code int }
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a.Code, sig
}

// checkJSONLines fails unless every line of out is a JSON object, and returns the lines.
func checkJSONLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		lines = append(lines, m)
	}
	return lines
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"127.0.0.2:8080", true},
		{"[::1]:0", true},
		{"localhost:9000", true},
		{"0.0.0.0:0", false},
		{":8080", false},
		{"[::]:0", false},
		{"192.168.1.10:80", false},
		{"example.com:80", false},
		{"127.0.0.1", false}, // no port
	}
	for _, tt := range tests {
		if err := checkLoopback(tt.addr); (err == nil) != tt.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok %t", tt.addr, err, tt.ok)
		}
	}
}

func TestRunRefusesBadCommandLines(t *testing.T) {
	t.Parallel()
	const secret = "never-print-this-secret"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"non-loopback address", []string{"-addr", "0.0.0.0:0"}, 2, "not a loopback address"},
		{"all interfaces", []string{"-addr", ":0"}, 2, "not a loopback address"},
		{"app without secret", []string{"-app", "7:"}, 2, "APPID:SECRET"},
		{"app without colon", []string{"-app", "7"}, 2, "APPID:SECRET"},
		{"app id not a number", []string{"-app", "seven:" + secret}, 2, "APPID must be"},
		{"app id zero", []string{"-app", "0:" + secret}, 2, "APPID must be"},
		{"rate not a number", []string{"-rate", "fast"}, 2, "-rate"},
		{"extra argument", []string{"serve"}, 2, "unexpected arguments"},
		{"unknown flag", []string{"-port", "1"}, 2, "-port"},
		{"seed file missing", []string{"-seed", filepath.Join(t.TempDir(), "none.json")}, 1, "no such file"},
		{"seed file invalid", []string{"-seed", "main.go"}, 1, "seed"},
		{"invalid port", []string{"-addr", "127.0.0.1:-1"}, 1, "cannot listen"},
		{"tls without a certificate file", []string{"-tls"}, 2, "go together"},
		{"certificate file without tls", []string{"-tls-cert-out", filepath.Join(t.TempDir(), "ca.pem")}, 2, "go together"},
		{"http1-only without tls", []string{"-http1-only"}, 2, "goes with -tls"},
		{"certificate file not writable", []string{"-tls", "-tls-cert-out", filepath.Join(t.TempDir(), "none", "ca.pem")}, 1, "cannot write the certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			lines := checkJSONLines(t, stderr.String())
			if len(lines) == 0 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.wantErr)
			}
			if strings.Contains(stderr.String(), secret) {
				t.Error("stderr shows the secret")
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, flag := range []string{"-addr", "-allow-remote", "-seed", "-app", "-rate", "-missing-code", "-tls", "-tls-cert-out"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("usage does not mention %s", flag)
		}
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	const extraSecret = "extra-app-secret-000000000000000"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	var stderr testutil.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"-seed", seedFile, "-app", "555:" + extraSecret, "-rate", "0", "-missing-code", "0"}, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ZIM_URL line: %v (stderr: %s)", err, stderr.String())
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "ZIM_URL=http://127.0.0.1:")
	if !ok {
		t.Fatalf("first line %q, want ZIM_URL=http://127.0.0.1:PORT", line)
	}
	base = "http://127.0.0.1:" + base

	steps := []struct {
		app           uint32
		secret, conv  string
		typ, wantCode int
	}{
		{seedApp, seedSecret, "bob", 0, 0},
		{seedApp, seedSecret, "bob", 0, 0}, // -missing-code 0
		{555, extraSecret, "x", 0, 0},      // -app
		{555, seedSecret, "x", 0, 100000005},
	}
	for i, st := range steps {
		if code, _ := deleteConv(t, base, st.app, st.secret, "alice", st.conv, st.typ); code != st.wantCode {
			t.Fatalf("step %d: Code = %d, want %d", i, code, st.wantCode)
		}
	}
	if convs, err := zimtest.NewAdminClient(base).Conversations(t.Context(), seedApp, "alice"); err != nil || len(convs) != 1 {
		t.Fatalf("alice has %v (%v), want only #team-7 left", convs, err)
	}

	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	out := stderr.String()
	checkJSONLines(t, out)
	if strings.Contains(out, extraSecret) || strings.Contains(out, seedSecret) {
		t.Error("stderr shows a secret")
	}
	if !strings.Contains(out, `"msg":"zimserver ready"`) || !strings.Contains(out, `"msg":"zimserver stopping"`) ||
		strings.Count(out, `"msg":"zim request"`) != len(steps) {
		t.Errorf("stderr lacks the ready, request or stopping lines: %s", out)
	}
}

func TestProcess(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "zimserver")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-seed", seedFile)
			var stderr testutil.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill() }()

			out := bufio.NewReader(stdout)
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the ZIM_URL line: %v (stderr: %s)", err, stderr.String())
			}
			base, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "ZIM_URL=")
			if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
				t.Fatalf("first line %q, want ZIM_URL=http://127.0.0.1:PORT", line)
			}

			code, sig1 := deleteConv(t, base, seedApp, seedSecret, "alice", "bob", 0)
			if code != 0 {
				t.Fatalf("first delete: Code = %d, want 0", code)
			}
			code, sig2 := deleteConv(t, base, seedApp, seedSecret, "alice", "bob", 0)
			if code != 660800002 {
				t.Fatalf("second delete: Code = %d, want 660800002", code)
			}
			reqs, err := zimtest.NewAdminClient(base).Requests(ctx)
			if err != nil || len(reqs) != 2 || !reqs[0].SignatureValid || reqs[1].Code != 660800002 {
				t.Fatalf("request log %v (%v)", reqs, err)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(out)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %s: %v, want exit status 0 (stderr: %s)", sig, err, stderr.String())
			}
			if len(rest) != 0 {
				t.Errorf("stdout has more than the ZIM_URL line: %q", rest)
			}
			logs := stderr.String()
			lines := checkJSONLines(t, logs)
			if len(lines) < 4 { // ready, two requests, stopping
				t.Errorf("stderr has %d JSON lines, want at least 4: %s", len(lines), logs)
			}
			for _, secret := range []string{seedSecret, sig1, sig2} {
				if strings.Contains(logs, secret) {
					t.Error("stderr shows the secret or a signature")
				}
			}
			if _, err := client.Get(base + "/_zimtest/requests"); err == nil {
				t.Error("the server still answers after exiting")
			}
		})
	}
}
