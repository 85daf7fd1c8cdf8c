// Command zimserver runs the in-memory ZIM server of package zimtest as a
// process, for the local stack and end-to-end tests.
//
//	zimserver [-addr 127.0.0.1:0] [-seed dev/zim-seed.json] [-app APPID:SECRET]... [-rate 20] [-missing-code 660800002]
//	          [-tls -tls-cert-out FILE [-http1-only]]
//
// When it is ready it prints exactly one line to stdout,
//
//	ZIM_URL=http://127.0.0.1:PORT
//
// which is both the API's base URL and the admin API's (zimtest.NewAdminClient).
//
// With -tls it serves HTTPS (HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3, as
// zimtest.Server.StartTLS does), writes the PEM certificate of the authority
// that signed its certificate to the -tls-cert-out file before it prints
// ZIM_URL=https://127.0.0.1:PORT, and a process trusts it with
// SSL_CERT_FILE=FILE (Go's crypto/x509 on Linux reads that file in place of
// the system's bundle). Each run makes a new authority and overwrites FILE.
// With -http1-only as well it offers only HTTP/1.1 (ALPN), like a server
// without HTTP/2.
// It logs JSON lines to stderr (one per API request; never a secret or a
// signature) and exits with status 0 on SIGINT or SIGTERM, 2 on bad flags and
// 1 when it cannot start.
//
// The admin API lets anyone who reaches the server set secrets and faults, so
// -addr must be a loopback address unless -allow-remote is given. A secret
// given with -app is visible to other local users in the process list; prefer
// -seed with a file only you can read when that matters.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run serves until ctx ends and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		log.Error("bad command line", "error", err.Error())
		return 2
	}

	s := zimtest.NewUnstartedServer(append(cfg.options(), zimtest.WithLogger(log))...)
	if cfg.seed != "" {
		if err := loadSeed(s, cfg.seed); err != nil {
			log.Error("cannot load the seed", "file", cfg.seed, "error", err.Error())
			return 1
		}
	}
	for _, a := range cfg.apps {
		s.SetSecret(a.id, a.secret)
	}
	l, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.addr, "error", err.Error())
		return 1
	}
	s.Listener = l
	if cfg.tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	defer s.Close()
	if cfg.tls {
		// Written before the ZIM_URL line, which tells readers the file is ready.
		if err := os.WriteFile(cfg.certOut, s.CertificatePEM(), 0o644); err != nil {
			log.Error("cannot write the certificate", "file", cfg.certOut, "error", err.Error())
			return 1
		}
	}

	if _, err := fmt.Fprintf(stdout, "ZIM_URL=%s\n", s.URL); err != nil {
		log.Error("cannot write the ZIM_URL line", "error", err.Error())
		return 1
	}
	log.Info("zimserver ready", "url", s.URL, "app_flags", cfg.appIDs(), "seed", cfg.seed,
		"rate_limit_per_second", cfg.rate, "missing_conversation_code", cfg.missingCode, "tls_cert_out", cfg.certOut, "http1_only", cfg.http1Only)
	<-ctx.Done()
	log.Info("zimserver stopping", "cause", context.Cause(ctx).Error())
	return 0
}

// app is one -app flag.
type app struct {
	id     uint32
	secret string
}

// config is the parsed command line.
type config struct {
	addr        string
	allowRemote bool
	seed        string
	apps        []app
	rate        int
	missingCode int
	tls         bool
	certOut     string
	http1Only   bool
}

func (c config) options() []zimtest.Option {
	opts := []zimtest.Option{
		zimtest.WithRateLimit(c.rate, time.Second),
		zimtest.WithMissingConversationCode(c.missingCode),
	}
	if c.http1Only {
		opts = append(opts, zimtest.WithoutHTTP2())
	}
	return opts
}

// appIDs lists the -app ids, for the log (never their secrets).
func (c config) appIDs() []uint32 {
	ids := make([]uint32, len(c.apps))
	for i, a := range c.apps {
		ids[i] = a.id
	}
	return ids
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("zimserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are logged as JSON by run
	fs.StringVar(&c.addr, "addr", "127.0.0.1:0", "listen address; must be loopback unless -allow-remote")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback -addr (anyone who reaches the admin API controls the server)")
	fs.StringVar(&c.seed, "seed", "", "seed `file` (the dev/zim-seed.json format): apps and conversations")
	// The flag package quotes a refused value in its error; for -app that
	// would print the secret, so the error is kept and reported after Parse.
	var appErr error
	fs.Func("app", "an app as `APPID:SECRET` (repeatable; applied after -seed)", func(v string) error {
		a, err := parseApp(v)
		if err != nil {
			appErr = cmp.Or(appErr, fmt.Errorf("-app: %w", err))
			return nil
		}
		c.apps = append(c.apps, a)
		return nil
	})
	fs.IntVar(&c.rate, "rate", zimtest.DefaultRateLimit, "accepted requests per second and AppId (0 disables the limit)")
	fs.IntVar(&c.missingCode, "missing-code", zimtest.DefaultMissingConversationCode, "DeleteConv's code for a conversation that does not exist (0 answers success)")
	fs.BoolVar(&c.tls, "tls", false, "serve HTTPS with a new certificate (needs -tls-cert-out)")
	fs.BoolVar(&c.http1Only, "http1-only", false, "with -tls, offer only HTTP/1.1, like a server without HTTP/2")
	fs.StringVar(&c.certOut, "tls-cert-out", "", "with -tls, write the PEM certificate that clients must trust to `file` (for SSL_CERT_FILE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
		}
		return c, err
	}
	if appErr != nil {
		return c, appErr
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.tls != (c.certOut != "") {
		return c, errors.New("-tls and -tls-cert-out go together: without the certificate file no client can trust the server")
	}
	if c.http1Only && !c.tls {
		return c, errors.New("-http1-only goes with -tls: without TLS the server speaks HTTP/1.1 only anyway")
	}
	if !c.allowRemote {
		if err := checkLoopback(c.addr); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseApp parses APPID:SECRET. Its errors never show the secret.
func parseApp(v string) (app, error) {
	idText, secret, ok := strings.Cut(v, ":")
	id, err := strconv.ParseUint(idText, 10, 32)
	switch {
	case !ok || secret == "":
		return app{}, errors.New("want APPID:SECRET")
	case err != nil || id == 0:
		return app{}, errors.New("APPID must be a positive 32-bit number")
	}
	return app{id: uint32(id), secret: secret}, nil
}

// checkLoopback refuses an address that is not on a loopback interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-addr %q is not a loopback address; the admin API would be reachable by others (use -allow-remote to insist)", addr)
}

func loadSeed(s *zimtest.Server, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.LoadSeed(f)
}
