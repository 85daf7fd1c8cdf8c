// Package motoserver starts and stops a local moto_server (a local AWS API,
// Secrets Manager, SQS and DynamoDB included) for tests and the local
// development stack.
//
// moto_server ships with the machine image's Python (pip package moto[server]);
// it cannot be installed from anywhere else here, so a missing binary is an
// error with a clear message, never a skipped test.
package motoserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Binary is the name of the executable Start looks for on PATH.
const Binary = "moto_server"

// Region and the static credentials every Server hands to its clients. moto
// accepts any credentials unless IAM enforcement is switched on (see WithEnv).
const (
	Region          = "us-east-1"
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

// Defaults for the options. The grace is short because moto keeps nothing
// worth flushing, and on SIGTERM it waits for every open keep-alive
// connection to close, which an SDK client in the same process may never do.
//
// The ready timeout only guards against a server that hangs: Start returns
// as soon as moto answers, and at once when it exits. moto's start-up is
// Python importing its modules, CPU-bound: about 1 s on an idle machine, but
// 17.5 s was measured on a 2-core machine at load average 20, and 20 s
// (the former bound) failed tests that had nothing to do with start-up time.
const (
	DefaultReadyTimeout = 2 * time.Minute
	DefaultStopGrace    = time.Second
)

// ErrNotFound is returned by Start when moto_server (or the executable named
// with WithBinary) is not on PATH.
var ErrNotFound = errors.New("moto_server not found on PATH: it ships with the machine image's Python (pip package moto[server])")

// Server is a running moto_server. Stop it when done.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string

	name     string // the executable, for error messages
	cmd      *exec.Cmd
	grace    time.Duration
	exited   chan struct{} // closed when the process has been waited for
	waitErr  error         // set before exited is closed
	listen   chan string   // the URL moto names once it listens
	stopOnce sync.Once
}

// Option configures Start.
type Option func(*options)

type options struct {
	binary       string
	readyTimeout time.Duration
	stopGrace    time.Duration
	env          []string
	stdout       *os.File
	stderr       *os.File
}

// WithBinary runs the named executable (looked up on PATH unless it contains
// a slash) instead of Binary, e.g. a wrapper script.
func WithBinary(name string) Option { return func(o *options) { o.binary = name } }

// WithReadyTimeout bounds how long Start waits for the server to answer HTTP
// (default DefaultReadyTimeout).
func WithReadyTimeout(d time.Duration) Option { return func(o *options) { o.readyTimeout = d } }

// WithStopGrace is how long Stop waits after SIGTERM before it sends SIGKILL
// (default DefaultStopGrace).
func WithStopGrace(d time.Duration) Option { return func(o *options) { o.stopGrace = d } }

// WithEnv adds "KEY=value" entries to the server's environment, e.g.
// "INITIAL_NO_AUTH_ACTION_COUNT=3" to make moto enforce IAM after three
// unauthenticated requests.
func WithEnv(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// WithOutput sends the server's stdout and stderr to the given files (by
// default they are discarded; moto logs every request).
func WithOutput(stdout, stderr *os.File) Option {
	return func(o *options) { o.stdout, o.stderr = stdout, stderr }
}

// Start finds moto_server on PATH, starts it on a free 127.0.0.1 port in its
// own process group and returns once it answers HTTP. ctx bounds the start-up
// only; the server runs until Stop.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	o := options{binary: Binary, readyTimeout: DefaultReadyTimeout, stopGrace: DefaultStopGrace}
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath(o.binary)
	if err != nil {
		if o.binary == Binary {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("%w (looked for %q: %v)", ErrNotFound, o.binary, err)
	}
	var args []string
	if o.binary == Binary {
		// moto_server's own Python runs atomic.py, which serves the same
		// moto with DynamoDB writes made atomic (see atomic.py).
		if bin, args, err = atomicCommand(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.readyTimeout)
	defer cancel()

	s, err := start(bin, args, o)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// start runs moto on port 0: it binds a port of the kernel's choosing and
// names it on stderr. A port found free beforehand could be taken by another
// process during moto's start-up (seconds on a loaded machine), whose answers
// would then pass for moto's.
func start(bin string, args []string, o options) (*Server, error) {
	cmd := exec.Command(bin, append(args, "-H", "127.0.0.1", "-p", "0")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	cmd.Env = append(childEnv(os.Environ()), o.env...)
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	}
	stderr, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("motoserver: %w", err)
	}
	cmd.Stderr = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		stderr.Close()
		return nil, fmt.Errorf("motoserver: starting %s: %w", bin, err)
	}
	s := &Server{
		name:   bin,
		cmd:    cmd,
		grace:  o.stopGrace,
		exited: make(chan struct{}),
		listen: make(chan string, 1),
	}
	go s.readStderr(stderr, o.stderr)
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// readStderr passes moto's stderr on to out (nil: discarded) and sends the
// URL of its " * Running on http://127.0.0.1:PORT" line on s.listen. It reads
// until moto exits, so that moto never blocks writing its request log.
func (s *Server) readStderr(r *os.File, out *os.File) {
	defer r.Close()
	var dst io.Writer = io.Discard
	if out != nil {
		dst = out
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(dst, line)
		if _, u, ok := strings.Cut(line, "Running on "); ok && strings.HasPrefix(u, "http://") {
			select {
			case s.listen <- strings.TrimSpace(u):
			default:
			}
		}
	}
	_, _ = io.Copy(dst, r) // past a line too long for the scanner
}

// childEnv is the caller's environment without its AWS settings: the boto
// inside moto_server fails every request when, say, AWS_PROFILE names a
// profile it cannot find, and a local server has no use for the caller's
// account. The caller's AWS files are hidden for the same reason.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return append(out, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
}

// waitReady waits for moto to name its port, then polls it until it answers
// HTTP with any status.
func (s *Server) waitReady(ctx context.Context) error {
	select {
	case s.URL = <-s.listen:
	case <-s.exited:
		return fmt.Errorf("motoserver: %s exited before answering: %v", s.name, s.waitErr)
	case <-ctx.Done():
		return fmt.Errorf("motoserver: %s did not answer (it named no port) in time: %w", s.name, ctx.Err())
	}
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if err != nil {
			return fmt.Errorf("motoserver: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("motoserver: %s exited before answering on %s: %v", s.name, s.URL, s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("motoserver: %s did not answer on %s in time: %w", s.name, s.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// PID is the server process's id (also its process group id).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server's process group: SIGTERM, then SIGKILL if it has not
// exited within the grace period. It waits for the process and is safe to call
// more than once and from several goroutines.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(s.grace)
		defer t.Stop()
		select {
		case <-s.exited:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.exited
		}
		// Children that ignored SIGTERM while the leader exited.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
	<-s.exited
}

// Env is what a child process needs to reach this server through the AWS SDK:
// the Secrets Manager, SQS and DynamoDB endpoints, the region and static
// credentials.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + s.URL,
		"AWS_ENDPOINT_URL_SQS=" + s.URL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.URL,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
	}
}

// AWSConfig is an SDK configuration pointed at this server, with static
// credentials and region us-east-1. It is built from scratch: shared config
// files and AWS_* environment variables (an endpoint meant for another server
// included) are not consulted. ctx is unused and kept for symmetry with
// config.LoadDefaultConfig.
func (s *Server) AWSConfig(ctx context.Context) (aws.Config, error) {
	return s.AWSConfigWithCredentials(ctx, AccessKeyID, SecretAccessKey)
}

// AWSConfigWithCredentials is AWSConfig with the given access key, for a moto
// that enforces IAM (see WithEnv).
func (s *Server) AWSConfigWithCredentials(_ context.Context, accessKeyID, secretAccessKey string) (aws.Config, error) {
	if accessKeyID == "" || secretAccessKey == "" {
		return aws.Config{}, errors.New("motoserver: AWS config: empty access key")
	}
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, "")),
		BaseEndpoint: aws.String(s.URL),
	}, nil
}

// StartT starts a server for a test or benchmark and stops it in t.Cleanup.
// It fails t (never skips) when the server cannot start.
func StartT(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(context.Background(), opts...)
	if err != nil {
		t.Fatalf("motoserver: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Shared is one server for all of a package's tests: moto_server takes
// seconds to start, so the first test that asks starts it and RunTests stops
// it once they have all run. The zero value is ready to use.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Server returns the shared server, starting it with opts on first use. It
// fails t (never skips) when the server cannot start.
func (s *Shared) Server(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s.once.Do(func() { s.srv, s.err = Start(context.Background(), opts...) })
	if s.err != nil {
		t.Fatalf("motoserver: %v", s.err)
	}
	return s.srv
}

// RunTests is a TestMain's body: it runs m's tests, stops the shared server
// if one started, and exits with the tests' status. Call testenv.Require
// first, so that no test runs without moto_server.
func (s *Shared) RunTests(m *testing.M) {
	code := m.Run()
	if s.srv != nil {
		s.srv.Stop()
	}
	os.Exit(code)
}
