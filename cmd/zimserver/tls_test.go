package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// probeEnv, when set, makes the test binary a probe instead of running tests:
// a separate process that GETs $probeEnv with Go's default client (system
// roots, so SSL_CERT_FILE) and prints the protocol or the error.
const probeEnv = "ZIMSERVER_TEST_PROBE_URL"

func TestMain(m *testing.M) {
	if u := os.Getenv(probeEnv); u != "" {
		os.Exit(probe(u))
	}
	os.Exit(m.Run())
}

func probe(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	resp.Body.Close()
	fmt.Printf("%s %d\n", resp.Proto, resp.StatusCode)
	return 0
}

// runProbe runs the probe in a new process with the extra environment env.
func runProbe(t *testing.T, url string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, probeEnv+"="+url)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestRunServesTLS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	certFile := filepath.Join(t.TempDir(), "zim-ca.pem")
	stdoutR, stdoutW := io.Pipe()
	var stderr testutil.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"-seed", seedFile, "-tls", "-tls-cert-out", certFile}, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ZIM_URL line: %v (stderr: %s)", err, stderr.String())
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "ZIM_URL=")
	if !ok || !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("first line %q, want ZIM_URL=https://127.0.0.1:PORT", line)
	}

	// The file is there by the time ZIM_URL is printed, and holds an authority.
	caPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatalf("%s holds no PEM block: %q", certFile, caPEM)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("%s: %v; want a certificate authority", certFile, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	if code, _ := deleteConvWith(t, hc, base, seedApp, seedSecret, "alice", "bob", 0); code != 0 {
		t.Fatalf("DeleteConv over HTTPS: Code = %d, want 0", code)
	}

	// A separate process trusts the server through SSL_CERT_FILE alone (an
	// empty SSL_CERT_DIR keeps the system's certificates out).
	url := base + "/_zimtest/requests"
	noDir := "SSL_CERT_DIR=" + t.TempDir()
	out, err := runProbe(t, url, noDir, "SSL_CERT_FILE="+certFile)
	if err != nil || out != "HTTP/2.0 200" {
		t.Errorf("probe with SSL_CERT_FILE: %q, %v; want HTTP/2.0 200", out, err)
	}
	// With another authority's certificate, the same process refuses it.
	other := zimtest.NewTLSServer()
	other.Close()
	otherFile := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherFile, other.CertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runProbe(t, url, noDir, "SSL_CERT_FILE="+otherFile)
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("probe with another authority: %q, %v; want an unknown authority error", out, err)
	}

	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), `"tls_cert_out":"`+certFile+`"`) {
		t.Errorf("the ready line does not name the certificate file: %s", stderr.String())
	}
}

// TestRunServesHTTP1Only: with -http1-only a client that offers h2 speaks
// HTTP/1.1 to the server.
func TestRunServesHTTP1Only(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	certFile := filepath.Join(t.TempDir(), "zim-ca.pem")
	stdoutR, stdoutW := io.Pipe()
	var stderr testutil.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"-seed", seedFile, "-tls", "-tls-cert-out", certFile, "-http1-only"}, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ZIM_URL line: %v (stderr: %s)", err, stderr.String())
	}
	base, _ := strings.CutPrefix(strings.TrimSpace(line), "ZIM_URL=")
	caPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(base + "/_zimtest/requests")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusOK {
		t.Errorf("answered %d over %s, want 200 over HTTP/1.1", resp.StatusCode, resp.Proto)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}
