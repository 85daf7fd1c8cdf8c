package zimtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// certValidity is how long a server's certificates are valid: long enough
// for a local stack left running, and they are never reused.
const certValidity = 365 * 24 * time.Hour

// NewTLSServer returns a started Server that serves HTTPS with HTTP/2 on
// 127.0.0.1, like httptest.NewTLSServer. Trust it through Client or
// CertificatePEM. The caller must Close it.
func NewTLSServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.StartTLS()
	return s
}

// StartTLS is Start for HTTPS: it serves TLS 1.2 and 1.3, HTTP/2 (unless
// WithoutHTTP2) and HTTP/1.1 (chosen by ALPN) with a certificate made for this server, and sets
// s.URL to "https://…". The certificate is signed by a certificate authority
// of its own, whose certificate CertificatePEM returns. It panics if the
// server was already started, like httptest.Server.StartTLS.
func (s *Server) StartTLS() {
	if s.URL != "" {
		panic("zimtest: Server already started")
	}
	s.listen()
	cert, caPEM, roots, err := newCertificate(s.Listener.Addr())
	if err != nil {
		panic(fmt.Sprintf("zimtest: failed to make a certificate: %v", err))
	}
	s.certPEM = caPEM
	s.URL = "https://" + s.Listener.Addr().String()
	s.srv = s.newHTTPServer()
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.Protocols = new(http.Protocols)
	s.srv.Protocols.SetHTTP1(true)
	s.srv.Protocols.SetHTTP2(!s.http1Only)
	s.client = newClient(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	go func() { _ = s.srv.ServeTLS(s.Listener, "", "") }()
}

// CertificatePEM returns the PEM certificate of the authority that signed the
// server's certificate: what a client must trust, for example through
// SSL_CERT_FILE. It is nil unless the server was started with StartTLS.
func (s *Server) CertificatePEM() []byte {
	return append([]byte(nil), s.certPEM...)
}

// Client returns an HTTP client for the started server, like
// httptest.Server.Client: for HTTPS it trusts the server's certificate and
// attempts HTTP/2. Close closes its idle connections.
func (s *Server) Client() *http.Client { return s.client }

// newClient returns a client on a clone of http.DefaultTransport; tlsConfig
// may be nil.
func newClient(tlsConfig *tls.Config) *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{ForceAttemptHTTP2: true}
	}
	t.TLSClientConfig = tlsConfig
	return &http.Client{Transport: t, Timeout: time.Minute}
}

// newCertificate makes a certificate authority and a server certificate it
// signs, valid for localhost, the loopback addresses and addr's IP. It returns
// the server's chain and key, the authority's PEM, and a pool trusting it.
func newCertificate(addr net.Addr) (tls.Certificate, []byte, *x509.CertPool, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"zimtest"}, CommonName: "zimtest certificate authority"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsLoopback() && !ta.IP.IsUnspecified() {
		ips = append(ips, ta.IP)
	}
	template := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"zimtest"}, CommonName: "zimtest server"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	cert := tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), roots, nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
