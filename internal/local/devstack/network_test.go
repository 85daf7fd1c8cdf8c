package devstack_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

type fetched struct {
	Status int
	Proto  string
	Error  string
}

// With TLS and a latency profile, the function reaches the ZIM server over
// HTTPS through a proxy, trusting its authority through SSL_CERT_FILE, and
// Secrets Manager through another; SQS and admin calls go straight.
func TestStackWithTLSAndLatency(t *testing.T) {
	root, fn, zim := standIns(t)
	prof := netem.Profile{
		SecretsManager: netem.Link{RoundTrip: time.Millisecond},
		ZEGO:           netem.Link{Setup: time.Millisecond, RoundTrip: 2 * time.Millisecond},
	}
	s, err := devstack.Start(t.Context(), devstack.Config{
		Root: root, Bootstrap: fn, ZIMServer: zim, LogDir: t.TempDir(),
		TLS: true, Latency: &prof,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	res, err := s.Invoke(t.Context(), []byte(`{"env": ["ZEGO_API_URL", "SSL_CERT_FILE", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_SQS"],
		"get": ["ZEGO_API_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"]}`))
	if err != nil || res.FunctionError {
		t.Fatalf("Invoke: %v %s", err, res.Body)
	}
	var e struct {
		Env map[string]string
		Got map[string]fetched
	}
	if err := json.Unmarshal(res.Body, &e); err != nil {
		t.Fatalf("answer %s: %v", res.Body, err)
	}

	if !strings.HasPrefix(s.ZIMURL(), "https://127.0.0.1:") {
		t.Errorf("ZIMURL = %q, want the ZIM server's own https URL", s.ZIMURL())
	}
	want := map[string]string{
		"ZEGO_API_URL":                     s.APIURL(),
		"SSL_CERT_FILE":                    s.CertificateFile(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.FunctionSecretsManagerURL(),
		"AWS_ENDPOINT_URL_SQS":             s.SecretsManagerURL(), // moto_server, straight
	}
	for k, v := range want {
		if v == "" || e.Env[k] != v {
			t.Errorf("function env %s = %q, want %q", k, e.Env[k], v)
		}
	}
	if s.APIURL() == s.ZIMURL() || !strings.HasPrefix(s.APIURL(), "https://127.0.0.1:") {
		t.Errorf("APIURL = %q, want the proxy's https URL, not the server's %q", s.APIURL(), s.ZIMURL())
	}
	if s.FunctionSecretsManagerURL() == s.SecretsManagerURL() {
		t.Errorf("FunctionSecretsManagerURL = %q, the server's own: want the proxy", s.FunctionSecretsManagerURL())
	}
	if g := e.Got["ZEGO_API_URL"]; g.Status != 200 || g.Proto != "HTTP/2.0" {
		t.Errorf("GET ZEGO_API_URL from the function: %+v, want 200 over HTTP/2 (the certificate trusted through SSL_CERT_FILE)", g)
	}
	if g := e.Got["AWS_ENDPOINT_URL_SECRETS_MANAGER"]; g.Status == 0 {
		t.Errorf("GET AWS_ENDPOINT_URL_SECRETS_MANAGER from the function: %+v, want an answer from moto_server", g)
	}
	if n := s.ZEGOConnections(); n != 1 {
		t.Errorf("ZEGOConnections = %d after one GET, want 1", n)
	}

	// The admin client trusts the server and goes straight to it.
	if err := s.Admin().ResetRequests(t.Context()); err != nil {
		t.Errorf("admin call over HTTPS: %v", err)
	}
	if n := s.ZEGOConnections(); n != 1 {
		t.Errorf("ZEGOConnections = %d after an admin call, want it still 1", n)
	}
}

func TestStackRefusesLatencyForTheAWSTarget(t *testing.T) {
	root, fn, _ := standIns(t)
	prof := netem.DefaultProfile()
	_, err := devstack.Start(t.Context(), devstack.Config{Root: root, Bootstrap: fn, Target: devstack.TargetAWS, Latency: &prof, LogDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "local stack only") {
		t.Errorf("Start(TargetAWS, Latency) = %v, want an error saying it is for the local stack", err)
	}
}
