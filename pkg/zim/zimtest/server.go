package zimtest

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Defaults of a new Server.
const (
	// DefaultRateLimit is how many accepted requests one AppId may make per
	// DefaultRateWindow: ZEGO's own limit, zim.MaxRateLimit.
	DefaultRateLimit = zim.MaxRateLimit
	// DefaultRateWindow is the length of the sliding rate-limit window.
	DefaultRateWindow = time.Second
	// DefaultMissingConversationCode is what DeleteConv answers for a conversation
	// that does not exist (or is not among the user's latest 1000).
	DefaultMissingConversationCode = 660800002
)

// Server is an in-memory ZIM server API. Create it with NewServer or
// NewTLSServer (started) or NewUnstartedServer (then Start or StartTLS), and
// Close it when done. All methods are safe
// for concurrent use.
type Server struct {
	// URL is the base URL of the started server, "http://127.0.0.1:port"
	// ("https://…" after StartTLS), without a trailing slash. Empty until
	// Start or StartTLS.
	URL string

	// Listener is what Start and StartTLS serve on. When nil, they listen on
	// a free port of 127.0.0.1. Set it before starting to serve elsewhere.
	Listener net.Listener

	now         func() time.Time
	logger      *slog.Logger
	rateN       int
	rateWindow  time.Duration
	missingCode int
	http1Only   bool

	mu       sync.Mutex
	apps     map[uint32]string
	store    store
	windows  map[uint32][]time.Time
	faults   []*pendingFault
	log      []*logEntry
	inflight int
	idle     *sync.Cond

	srv       *http.Server
	client    *http.Client
	certPEM   []byte // the authority's certificate, with StartTLS
	closed    chan struct{}
	closeOnce sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithApp adds an app (AppId and its ServerSecret). Give it several times to
// serve several apps at once.
func WithApp(appID uint32, serverSecret string) Option {
	return func(s *Server) { s.apps[appID] = serverSecret }
}

// WithClock sets the clock used for the timestamp check, the rate-limit
// window, the request log and conversation update times. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithRateLimit sets the per-AppId limit: at most n accepted requests in any
// sliding window of the given length. n <= 0 or window <= 0 disables the limit.
// Default: DefaultRateLimit per DefaultRateWindow.
func WithRateLimit(n int, window time.Duration) Option {
	return func(s *Server) { s.rateN, s.rateWindow = n, window }
}

// WithMissingConversationCode sets what DeleteConv answers for a conversation
// that does not exist; 0 answers success. Default DefaultMissingConversationCode.
func WithMissingConversationCode(code int) Option {
	return func(s *Server) { s.missingCode = code }
}

// WithoutHTTP2 makes StartTLS offer only HTTP/1.1 (ALPN "http/1.1"), like a
// server without HTTP/2: clients that offer h2 as well speak HTTP/1.1 to it.
// Start serves HTTP/1.1 only in any case.
func WithoutHTTP2() Option {
	return func(s *Server) { s.http1Only = true }
}

// WithLogger makes the server log one line per API request (never a secret or
// a signature) and its HTTP server's errors. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.logger = l
		}
	}
}

// NewServer returns a started Server listening on 127.0.0.1, like
// httptest.NewServer. The caller must Close it.
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.Start()
	return s
}

// NewUnstartedServer returns a Server that does not listen yet: set Listener
// if needed, then call Start. It can also be used as an http.Handler without
// ever being started.
func NewUnstartedServer(opts ...Option) *Server {
	s := &Server{
		now:         time.Now,
		logger:      slog.New(slog.DiscardHandler),
		rateN:       DefaultRateLimit,
		rateWindow:  DefaultRateWindow,
		missingCode: DefaultMissingConversationCode,
		apps:        make(map[uint32]string),
		store:       newStore(),
		windows:     make(map[uint32][]time.Time),
		closed:      make(chan struct{}),
	}
	s.idle = sync.NewCond(&s.mu)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start starts serving on s.Listener (a new 127.0.0.1 listener when nil) and
// sets s.URL. It panics if the server was already started or no port is free,
// like httptest.Server.Start.
func (s *Server) Start() {
	if s.URL != "" {
		panic("zimtest: Server already started")
	}
	s.listen()
	s.URL = "http://" + s.Listener.Addr().String()
	s.srv = s.newHTTPServer()
	s.client = newClient(nil)
	go func() { _ = s.srv.Serve(s.Listener) }()
}

// listen sets s.Listener to a free port of 127.0.0.1 unless it is set.
func (s *Server) listen() {
	if s.Listener != nil {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("zimtest: failed to listen on a port: %v", err))
	}
	s.Listener = l
}

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// Close stops the server: it closes the listener and every connection, cuts
// short the Delay of any fault being served, and waits for running handlers to
// return. Calling it more than once is harmless.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.srv != nil {
			_ = s.srv.Close()
			s.client.CloseIdleConnections()
		}
		s.mu.Lock()
		for s.inflight > 0 {
			s.idle.Wait()
		}
		s.mu.Unlock()
	})
}

// SetSecret adds an app or rotates its ServerSecret. The old secret stops
// working at once.
func (s *Server) SetSecret(appID uint32, serverSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = serverSecret
}

// secret returns the ServerSecret of appID, if the app exists.
func (s *Server) secret(appID uint32) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	secret, ok := s.apps[appID]
	return secret, ok
}

// ServeHTTP serves ZEGO's API on "/" and on any path that ends in "/" (so the
// server can sit under a path prefix), and the admin API under "/_zimtest/".
// Other paths answer 404; API methods other than GET and POST answer 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		if s.inflight == 0 {
			s.idle.Broadcast()
		}
		s.mu.Unlock()
	}()

	if rest, ok := adminRoute(r.URL.Path); ok {
		s.serveAdmin(w, r, rest)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.serveAPI(w, r)
}

// wait waits for d, unless the request is cancelled or the server closes first.
// It reports whether the whole delay passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closed:
		return false
	}
}

// drop closes the connection without an answer. Where the ResponseWriter
// cannot be hijacked (HTTP/2, a recorder), it aborts the handler the way
// net/http understands: panic(http.ErrAbortHandler).
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
