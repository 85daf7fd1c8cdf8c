package zim

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childURL, when set in the environment, makes TestSSLCertFile the child
// process: one Preconnect and one call with the default HTTP client.
const childURL = "ZIM_TEST_SSL_CERT_FILE_URL"

// TestSSLCertFile: on Linux, a process trusts a test CA named by SSL_CERT_FILE
// with the default HTTP client, so a deployed function can reach a local TLS
// ZIM server without code of its own; without it, the certificate is refused.
func TestSSLCertFile(t *testing.T) {
	if base := os.Getenv(childURL); base != "" {
		c := newTestClient(t, base)
		if err := c.Preconnect(t.Context()); err != nil {
			t.Fatalf("Preconnect: %v", err)
		}
		if _, err := c.DeleteConversation(t.Context(), testReq); err != nil {
			t.Fatalf("DeleteConversation: %v", err)
		}
		return
	}
	t.Parallel()
	z := newTLSZEGO(t, true, nil)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: z.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSSLCertFile$", "-test.count=1")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SSL_CERT_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append(extra, childURL+"="+z.srv.URL+testPrefix)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := run("SSL_CERT_FILE=" + ca); err != nil {
		t.Errorf("with SSL_CERT_FILE: %v\n%s", err, out)
	}
	if n := len(z.requests()); n != 1 {
		t.Errorf("ZEGO saw %d signed requests, want 1", n)
	}
	out, err := run()
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("without SSL_CERT_FILE: err %v, output\n%s\nwant the certificate refused", err, out)
	}
}
