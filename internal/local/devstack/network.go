package devstack

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

// CertificateFileName is the file under LogDir that receives the local ZIM
// server's certificate authority with Config.TLS (the functions' SSL_CERT_FILE).
const CertificateFileName = "zim-ca.pem"

// adminTimeout bounds each admin call over HTTPS, as the admin client's
// default client does over HTTP.
const adminTimeout = 30 * time.Second

// zimServerTLSArgs are zimserver's flags for Config.TLS.
func (s *Stack) zimServerTLSArgs() []string {
	if !s.cfg.TLS {
		return nil
	}
	s.certFile = filepath.Join(s.cfg.LogDir, CertificateFileName)
	args := []string{"-tls", "-tls-cert-out", s.certFile}
	if s.cfg.HTTP1Only {
		args = append(args, "-http1-only")
	}
	return args
}

// trustZIMServer reads the certificate authority zimserver wrote before it
// printed its URL, for the admin client.
func (s *Stack) trustZIMServer() error {
	if !s.cfg.TLS {
		return nil
	}
	pem, err := os.ReadFile(s.certFile)
	if err != nil {
		return fmt.Errorf("devstack: the ZIM server's certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("devstack: %s holds no PEM certificate", s.certFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	s.adminHTTP = &http.Client{Transport: t, Timeout: adminTimeout}
	return nil
}

// startProxies puts Config.Latency's links in front of the ZIM server and
// Secrets Manager. Only the functions go through them: the admin client, the
// secret's creation and SQS reach the services directly, so they neither
// wait nor count as connections.
func (s *Stack) startProxies() error {
	prof := s.cfg.Latency
	if prof == nil {
		return nil
	}
	s.progress("putting latency in front of the ZIM server (%v per round trip, %v set-up) and Secrets Manager (%v, %v)",
		prof.ZEGO.RoundTrip, prof.ZEGO.Setup, prof.SecretsManager.RoundTrip, prof.SecretsManager.Setup)
	zimAddr, err := hostPort(s.zimURL)
	if err != nil {
		return err
	}
	smAddr, err := hostPort(s.moto.URL)
	if err != nil {
		return err
	}
	if s.zegoProxy, err = netem.Listen(zimAddr, prof.ZEGO); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if s.smProxy, err = netem.Listen(smAddr, prof.SecretsManager); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// closeProxies closes the proxies, dropping anything in flight.
func (s *Stack) closeProxies() error {
	var errs []error
	for _, p := range []*netem.Proxy{s.zegoProxy, s.smProxy} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	if s.ddbProxy != nil {
		errs = append(errs, s.ddbProxy.Close())
	}
	return errors.Join(errs...)
}

// networkEnv overrides the local environment's endpoints for Config.TLS and
// Config.Latency.
func (s *Stack) networkEnv(env []string) []string {
	if s.certFile != "" {
		env = setEnv(env, "SSL_CERT_FILE", s.certFile)
	}
	if s.zegoProxy != nil {
		env = setEnv(env, "ZEGO_API_URL", s.APIURL())
		env = setEnv(env, "AWS_ENDPOINT_URL_SECRETS_MANAGER", s.FunctionSecretsManagerURL())
	}
	return env
}

// setEnv replaces key's entries in env with key=value.
func setEnv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

func hostPort(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("devstack: %q is not a URL with a host", rawURL)
	}
	return u.Host, nil
}

// APIURL is the ZEGO_API_URL the local functions get: the latency proxy in
// front of the ZIM server with Config.Latency, else ZIMURL. "" for TargetAWS.
func (s *Stack) APIURL() string {
	if s.zegoProxy == nil {
		return s.zimURL
	}
	u, err := url.Parse(s.zimURL)
	if err != nil {
		return ""
	}
	u.Host = s.zegoProxy.Addr()
	return u.String()
}

// FunctionSecretsManagerURL is the AWS_ENDPOINT_URL_SECRETS_MANAGER the local
// functions get: the latency proxy in front of moto_server with
// Config.Latency, else SecretsManagerURL. "" for TargetAWS.
func (s *Stack) FunctionSecretsManagerURL() string {
	if s.smProxy == nil {
		return s.SecretsManagerURL()
	}
	return "http://" + s.smProxy.Addr()
}

// CertificateFile is the PEM file of the ZIM server's certificate authority
// that the functions trust (SSL_CERT_FILE); "" without Config.TLS.
func (s *Stack) CertificateFile() string { return s.certFile }

// ZEGOConnections is how many connections the functions have opened to the
// ZIM server through the latency proxy since Start, counted by the proxy; 0
// without Config.Latency. The difference across a step is what it opened.
func (s *Stack) ZEGOConnections() int {
	if s.zegoProxy == nil {
		return 0
	}
	return s.zegoProxy.Accepted()
}
