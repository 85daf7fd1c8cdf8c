package zimtest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// postWith sends a raw API request with hc and returns the decoded envelope
// and the response (its body already read).
func postWith(t *testing.T, hc *http.Client, base string, q url.Values, body string) (answer, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", q.Get("Action"), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAnswer(t, resp.StatusCode, resp.Header.Get("Content-Type"), raw), resp
}

// clientTrusting returns a client that trusts only the certificates in
// caPEM, speaking HTTP/2 or only HTTP/1.1, up to TLS version maxVersion.
func clientTrusting(t *testing.T, caPEM []byte, http2 bool, maxVersion uint16) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CertificatePEM holds no certificate: %q", caPEM)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MaxVersion: maxVersion},
		ForceAttemptHTTP2: http2,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

func TestTLSServer(t *testing.T) {
	t.Parallel()
	s := zimtest.NewTLSServer(zimtest.WithApp(appA, secretA))
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %q, want https://127.0.0.1:PORT", s.URL)
	}

	caPEM := s.CertificatePEM()
	block, rest := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("CertificatePEM is not one PEM certificate: %q", caPEM)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CertificatePEM: %v, IsCA %v; want a certificate authority", err, ca != nil && ca.IsCA)
	}

	tests := []struct {
		name        string
		hc          *http.Client
		wantProto   int
		wantVersion uint16
	}{
		{"Client", s.Client(), 2, tls.VersionTLS13},
		{"PEM, HTTP/2, TLS 1.3", clientTrusting(t, caPEM, true, 0), 2, tls.VersionTLS13},
		{"PEM, HTTP/1.1, TLS 1.3", clientTrusting(t, caPEM, false, 0), 1, tls.VersionTLS13},
		{"PEM, HTTP/2, TLS 1.2", clientTrusting(t, caPEM, true, tls.VersionTLS12), 2, tls.VersionTLS12},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "tls-user-" + string(rune('a'+i))
			s.Seed(appA, user, testConv("bob"))
			a, resp := postWith(t, tt.hc, s.URL, query("DeleteConv", appA, secretA, time.Now()), deleteBody(user, "bob", 0))
			if a.Code != 0 || len(s.Conversations(appA, user)) != 0 {
				t.Fatalf("DeleteConv over HTTPS: Code %d, conversations left %v", a.Code, s.Conversations(appA, user))
			}
			if resp.ProtoMajor != tt.wantProto || resp.TLS == nil || resp.TLS.Version != tt.wantVersion {
				t.Fatalf("answered over %s, TLS %v; want HTTP/%d, TLS version %#x", resp.Proto, resp.TLS, tt.wantProto, tt.wantVersion)
			}
			leaf := resp.TLS.PeerCertificates[0]
			if err := leaf.CheckSignatureFrom(ca); err != nil || leaf.IsCA {
				t.Fatalf("the server's certificate is not a leaf signed by CertificatePEM's authority: %v", err)
			}
		})
	}

	t.Run("untrusted", func(t *testing.T) {
		// A client with the system's roots only must refuse the certificate.
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		_, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(s.URL + "/_zimtest/requests")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("GET with the system's roots: %v, want x509.UnknownAuthorityError", err)
		}
	})

	t.Run("admin client", func(t *testing.T) {
		ctx := t.Context()
		if err := zimtest.NewAdminClient(s.URL).ResetRequests(ctx); err == nil {
			t.Fatal("an AdminClient with the system's roots reached the TLS server")
		}
		c := zimtest.NewAdminClient(s.URL, zimtest.WithAdminHTTPClient(clientTrusting(t, caPEM, true, 0)))
		if err := c.Seed(ctx, appA, "tls-admin", testConv("carol")); err != nil {
			t.Fatal(err)
		}
		convs, err := c.Conversations(ctx, appA, "tls-admin")
		if err != nil || len(convs) != 1 || convs[0].ConvID != "carol" {
			t.Fatalf("Conversations = %v, %v", convs, err)
		}
	})

	t.Run("drop over HTTP/2", func(t *testing.T) {
		s.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "dropped", Drop: true})
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			s.URL+"/?"+query("DeleteConv", appA, secretA, time.Now()).Encode(), strings.NewReader(deleteBody("tls-drop", "dropped", 0)))
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := s.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a dropped request was answered over %s: HTTP %d", resp.Proto, resp.StatusCode)
		}
		// The stream was reset, not the server: the next request is served.
		if a, _ := postWith(t, s.Client(), s.URL, query("DeleteConv", appA, secretA, time.Now()), deleteBody("tls-drop", "x", 0)); a.Code != zimtest.DefaultMissingConversationCode {
			t.Fatalf("after the drop: Code %d", a.Code)
		}
	})
}

func TestTLSServerCertificateIsFresh(t *testing.T) {
	t.Parallel()
	a, b := zimtest.NewTLSServer(), zimtest.NewTLSServer()
	defer a.Close()
	defer b.Close()
	if string(a.CertificatePEM()) == string(b.CertificatePEM()) {
		t.Fatal("two servers share a certificate authority")
	}
	// One server's authority does not vouch for the other's certificate.
	if _, err := clientTrusting(t, a.CertificatePEM(), true, 0).Get(b.URL + "/_zimtest/requests"); err == nil {
		t.Fatal("server b is trusted through server a's certificate")
	}
	// CertificatePEM returns a copy.
	pemA := a.CertificatePEM()
	pemA[0] = 'x'
	if a.CertificatePEM()[0] != '-' {
		t.Fatal("CertificatePEM exposes the server's own buffer")
	}
}

func TestPlainServerHasNoCertificate(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if s.CertificatePEM() != nil {
		t.Errorf("CertificatePEM of an HTTP server = %q, want nil", s.CertificatePEM())
	}
	resp, err := s.Client().Get(s.URL + "/_zimtest/requests")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS != nil {
		t.Fatalf("GET over %s: %d, TLS %v", resp.Proto, resp.StatusCode, resp.TLS)
	}
}

func TestStartTLSTwicePanics(t *testing.T) {
	t.Parallel()
	for _, start := range []struct {
		name  string
		first func() *zimtest.Server
	}{
		{"after Start", func() *zimtest.Server { return zimtest.NewServer() }},
		{"after StartTLS", func() *zimtest.Server { return zimtest.NewTLSServer() }},
	} {
		t.Run(start.name, func(t *testing.T) {
			s := start.first()
			defer s.Close()
			defer func() {
				if recover() == nil {
					t.Error("StartTLS on a started server did not panic")
				}
			}()
			s.StartTLS()
		})
	}
}

// TestTLSServerWithoutHTTP2: a client offering h2 speaks HTTP/1.1 to a server
// started WithoutHTTP2.
func TestTLSServerWithoutHTTP2(t *testing.T) {
	t.Parallel()
	s := zimtest.NewTLSServer(zimtest.WithApp(appA, secretA), zimtest.WithoutHTTP2())
	t.Cleanup(s.Close)
	for name, hc := range map[string]*http.Client{
		"Client":           s.Client(),
		"PEM, offering h2": clientTrusting(t, s.CertificatePEM(), true, 0),
	} {
		s.Seed(appA, "h1-"+name, testConv("bob"))
		a, resp := postWith(t, hc, s.URL, query("DeleteConv", appA, secretA, time.Now()), deleteBody("h1-"+name, "bob", 0))
		if a.Code != 0 {
			t.Errorf("%s: DeleteConv: Code %d", name, a.Code)
		}
		if resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
			t.Errorf("%s: answered over %s (ALPN %q), want HTTP/1.1 over TLS", name, resp.Proto, resp.TLS.NegotiatedProtocol)
		}
	}
}
