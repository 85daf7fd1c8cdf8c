package zim

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultBaseURL serves every region; ZEGO's regional hosts (zim-api-sha,
// -hkg, -fra, -lax, -bom, -sgp .zego.im) are closer to servers in those regions.
const DefaultBaseURL = "https://zim-api.zego.im"

// MaxRateLimit is ZEGO's DeleteConv limit per AppId, in requests per second,
// shared by every caller of that AppId.
const MaxRateLimit = 20

// DefaultRateLimit is how many requests per second a Client sends without
// WithRateLimit: all of MaxRateLimit, for a sole caller of its AppId.
const DefaultRateLimit = MaxRateLimit

// rateHeadroom spaces requests slightly wider than the configured rate, so that
// network jitter cannot bunch rps+1 arrivals into ZEGO's one-second window.
const rateHeadroom = 0.97

// maxBodyBytes bounds how much of an answer is read; ZEGO's answers are small.
const maxBodyBytes = 1 << 20

// Client calls ZEGO's ZIM server API. It is safe for concurrent use; all its
// methods share one rate limiter.
type Client struct {
	base    string // scheme://host/path/, ready for "?Action=..."
	http    *http.Client
	limiter Limiter
	retry   RetryPolicy
	budget  *retryBudget // nil without RetryPolicy.RetryBudget
	now     func() time.Time
	log     *slog.Logger
	creds   CredentialsSource

	nonceMu sync.Mutex
	nonce   io.Reader

	// dialer opens the default HTTP client's connections; nil with WithHTTPClient.
	dialer *dialer

	// preconnecting is closed when the Preconnect in progress ends; nil when
	// none is. Calls wait for it, so that they share its connection.
	preconnecting atomic.Pointer[chan struct{}]
	// testPreconnectWait, set only by tests, is called as a call starts waiting for Preconnect.
	testPreconnectWait func()
}

// settings collects what Options set before New builds the Client.
type settings struct {
	baseURL    string
	httpClient *http.Client
	dial       dialFunc
	rps        float64
	limiter    Limiter
	retry      RetryPolicy
	now        func() time.Time
	nonce      io.Reader
	logger     *slog.Logger
}

// Option configures a Client in New.
type Option func(*settings) error

// WithBaseURL sets the API's base URL (default DefaultBaseURL). It must pass
// ValidateBaseURL; a path is kept as a prefix, so "http://127.0.0.1:8080/zim"
// posts to /zim/?Action=....
func WithBaseURL(raw string) Option {
	return func(s *settings) error {
		if err := ValidateBaseURL(raw); err != nil {
			return err
		}
		s.baseURL = raw
		return nil
	}
}

// WithHTTPClient sets the HTTP client. The default has its own transport (a clone
// of http.DefaultTransport with explicit dial, TLS and header timeouts, kept
// connections and HTTP/2 where the server offers it), a 10s total timeout per
// attempt, and does not follow redirects. With hc, the Client's rate limit,
// retries and retry budget still apply; the timeouts and redirect policy are
// hc's own, so set its Timeout. To trust a test CA, SSL_CERT_FILE (see
// Connections in the package documentation) keeps the default client.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return errors.New("zim: WithHTTPClient: client is nil")
		}
		s.httpClient = hc
		return nil
	}
}

// WithRateLimit sets how many requests per second the Client sends at most, over
// all its methods (default DefaultRateLimit). Requests are spaced at 97% of rps.
// It sizes the Client's own limiter, so it has no effect with WithLimiter.
func WithRateLimit(rps float64) Option {
	return func(s *settings) error {
		if !(rps > 0) {
			return errors.New("zim: WithRateLimit: requests per second must be greater than 0")
		}
		s.rps = rps
		return nil
	}
}

// Limiter paces the Client's requests: every attempt of every method, retries
// included, calls Wait before it is sent. Wait blocks until the request may go
// and returns nil, or returns an error without waiting when no slot can come
// before ctx's deadline (the call then fails with ErrThrottled) or when ctx
// ends (the call fails with ctx's error). It must be safe for concurrent use.
// A *rate.Limiter from golang.org/x/time/rate is a Limiter.
type Limiter interface {
	Wait(ctx context.Context) error
}

var _ Limiter = (*rate.Limiter)(nil)

// WithLimiter sets the Limiter the Client waits on before each attempt, in
// place of its own (a token bucket at 97% of WithRateLimit's rate, burst 1):
// for example one that takes slots from a budget shared with other processes.
// WithRateLimit then has no effect.
func WithLimiter(l Limiter) Option {
	return func(s *settings) error {
		if l == nil {
			return errors.New("zim: WithLimiter: limiter is nil")
		}
		s.limiter = l
		return nil
	}
}

// WithRetry sets the retry policy (default DefaultRetryPolicy).
func WithRetry(p RetryPolicy) Option {
	return func(s *settings) error {
		if err := p.validate(); err != nil {
			return err
		}
		s.retry = p
		return nil
	}
}

// WithClock sets the clock that supplies signature timestamps (default
// time.Now). Waits use the runtime's timers, which testing/synctest controls.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return errors.New("zim: WithClock: clock is nil")
		}
		s.now = now
		return nil
	}
}

// WithNonceSource sets where signature nonces come from (default crypto/rand).
// Only tests should need it; the reader is not required to be safe for
// concurrent use.
func WithNonceSource(r io.Reader) Option {
	return func(s *settings) error {
		if r == nil {
			return errors.New("zim: WithNonceSource: reader is nil")
		}
		s.nonce = r
		return nil
	}
}

// WithLogger sets the logger for per-attempt debug lines and retry warnings. The
// default discards everything. Secrets, signatures and query strings are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error {
		if l == nil {
			return errors.New("zim: WithLogger: logger is nil")
		}
		s.logger = l
		return nil
	}
}

// New returns a Client that signs with what creds supplies, asked on every
// attempt: StaticCredentials for a fixed AppID and ServerSecret, or a source
// that follows rotations (such as a secret cache). Static credentials are
// checked here, and malformed ones are a *ValidationError naming "AppId" or
// "ServerSecret" (never the value); a dynamic source's are checked per attempt.
func New(creds CredentialsSource, opts ...Option) (*Client, error) {
	if creds == nil {
		return nil, errors.New("zim: New: credentials source is nil")
	}
	if static, ok := staticCredentials(creds); ok {
		if err := static.Validate(); err != nil {
			return nil, err
		}
	}
	s := settings{
		baseURL: DefaultBaseURL,
		rps:     DefaultRateLimit,
		retry:   DefaultRetryPolicy,
		now:     time.Now,
		nonce:   rand.Reader,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&s); err != nil {
			return nil, err
		}
	}
	base, err := parseBaseURL(s.baseURL)
	if err != nil {
		return nil, err
	}
	var d *dialer
	if s.httpClient == nil {
		s.httpClient, d = defaultHTTPClient(s.dial)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.limiter == nil {
		limit := rate.Limit(s.rps * rateHeadroom)
		if math.IsInf(s.rps, 1) {
			limit = rate.Inf
		}
		s.limiter = &pacer{lim: rate.NewLimiter(limit, 1)}
	}
	return &Client{
		base:    base,
		http:    s.httpClient,
		limiter: s.limiter,
		retry:   s.retry,
		budget:  newRetryBudget(s.retry),
		now:     s.now,
		log:     s.logger,
		creds:   creds,
		nonce:   s.nonce,
		dialer:  d,
	}, nil
}

// jsonContentType is shared by every request; net/http does not modify header values.
var jsonContentType = []string{"application/json"}

// newRequest signs one attempt with a fresh nonce and timestamp and builds its
// HTTP request. body is reused as is across attempts.
func (c *Client) newRequest(ctx context.Context, action string, creds Credentials, body []byte) (*http.Request, error) {
	nonce, err := c.newNonce()
	if err != nil {
		return nil, err
	}
	ts := c.now().Unix()
	sig := Sign(creds.AppID, nonce, creds.ServerSecret, ts)

	u := make([]byte, 0, len(c.base)+len(action)+160)
	u = append(u, c.base...)
	u = append(u, "?Action="...)
	u = append(u, action...)
	u = append(u, "&AppId="...)
	u = strconv.AppendUint(u, uint64(creds.AppID), 10)
	u = append(u, "&SignatureNonce="...)
	u = append(u, nonce...)
	u = append(u, "&Timestamp="...)
	u = strconv.AppendInt(u, ts, 10)
	u = append(u, "&SignatureVersion="+SignatureVersion+"&Signature="...)
	u = append(u, sig...)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, string(u), bytes.NewReader(body))
	if err != nil {
		// Not wrapped: the message of url.Parse errors would quote the signed URL.
		return nil, fmt.Errorf("zim: %s: building the request failed", action)
	}
	req.Header["Content-Type"] = jsonContentType
	req.Header["Accept"] = jsonContentType
	return req, nil
}

// redactedURL names the endpoint in errors without the signed query.
func (c *Client) redactedURL(action string) string {
	return c.base + "?Action=" + action
}

// do runs one API call: for each attempt it takes credentials, waits for the
// rate limiter, signs, sends, decodes the envelope and maps the code to an
// error; then it decides whether and when to try again. On success it returns
// the raw body as well, for endpoints with fields beyond the envelope.
func (c *Client) do(ctx context.Context, action string, body []byte) (*Response, []byte, error) {
	start := time.Now()
	var (
		resp      *Response // allocated when the first request is sent
		last      error
		refreshed *Credentials // what Refresh returned, for the next attempt only
		resigned  bool         // already retried after ErrSignatureExpired
		refreshes bool         // already called Refresh
		backoffs  int
		budgeted  bool // the next attempt is a retry that took a budget token
	)
	finish := func(raw []byte, err error) (*Response, []byte, error) {
		if budgeted {
			// The retry the token was taken for was never sent.
			c.budget.refund()
		}
		if resp != nil {
			resp.Latency = time.Since(start)
		}
		return resp, raw, err
	}
	if err := c.awaitPreconnect(ctx); err != nil {
		return finish(nil, fmt.Errorf("zim: %s: %w", action, err))
	}
	for attempt := 1; ; attempt++ {
		var creds Credentials
		if refreshed != nil {
			creds, refreshed = *refreshed, nil
		} else {
			var err error
			if creds, err = c.credentials(ctx, action); err != nil {
				return finish(nil, err)
			}
		}

		if err := c.limiter.Wait(ctx); err != nil {
			switch {
			case ctx.Err() != nil:
				return finish(nil, fmt.Errorf("zim: %s: waiting for a rate-limit slot: %w", action, ctx.Err()))
			case last != nil:
				// Out of time for another attempt: the last answer says more than "throttled".
				return finish(nil, last)
			default:
				return finish(nil, fmt.Errorf("zim: %s: %w", action, ErrThrottled))
			}
		}

		req, err := c.newRequest(ctx, action, creds, body)
		if err != nil {
			return finish(nil, err)
		}
		if resp == nil {
			resp = &Response{}
		}
		resp.Attempts = attempt
		raw, err := c.send(req, action, attempt, resp)
		if healthyAnswer(err) {
			c.budget.healthy()
			if budgeted {
				// Only retries that fail again are counted against the budget.
				c.budget.refund()
			}
		}
		budgeted = false
		if err == nil {
			return finish(raw, nil)
		}
		last = err
		if ctx.Err() != nil {
			return finish(nil, err)
		}

		// Decide whether another attempt can help, and how soon.
		var (
			wait      time.Duration
			needToken bool // a backoff retry, bounded by the retry budget
		)
		switch {
		case errors.Is(err, ErrSignatureExpired):
			if resigned {
				return finish(nil, err)
			}
			resigned = true
		case errors.Is(err, ErrSignatureInvalid):
			if refreshes {
				return finish(nil, err)
			}
			refreshes = true
			if attempt >= c.retry.MaxAttempts {
				return finish(nil, err)
			}
			fresh, rerr := c.creds.Refresh(ctx, creds)
			if rerr != nil {
				return finish(nil, fmt.Errorf("zim: %s: refreshing credentials after %v: %w", action, err, rerr))
			}
			if fresh == creds {
				// Nothing new to sign with (static credentials): retrying cannot help.
				return finish(nil, err)
			}
			if verr := fresh.Validate(); verr != nil {
				return finish(nil, invalidCredentials(action, verr))
			}
			refreshed = &fresh
		case Retryable(err):
			backoffs++
			wait = c.retry.backoff(backoffs, rateLimited(err))
			// Throttle answers are retried whatever the budget: the limiter
			// and the longer backoff already pace them, and a deletion must
			// never be dropped because another caller shares the AppId.
			needToken = !rateLimited(err)
		default:
			return finish(nil, err)
		}
		if attempt >= c.retry.MaxAttempts {
			return finish(nil, err)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return finish(nil, err)
		}
		if needToken {
			if !c.budget.take() {
				c.log.LogAttrs(ctx, slog.LevelWarn, "zim: not retrying: retry budget spent",
					slog.String("action", action),
					slog.Int("attempt", attempt),
					slog.String("error", err.Error()))
				return finish(nil, err)
			}
			budgeted = true
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "zim: retrying",
			slog.String("action", action),
			slog.Int("attempt", attempt),
			slog.Duration("backoff", wait),
			slog.String("error", err.Error()))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return finish(nil, fmt.Errorf("zim: %s: waiting to retry: %w (last error: %v)", action, ctx.Err(), err))
			}
		}
	}
}

// credentials asks the source for this attempt's credentials and checks them,
// so that a bad secret fails here rather than as a signature error from ZEGO.
func (c *Client) credentials(ctx context.Context, action string) (Credentials, error) {
	creds, err := c.creds.Credentials(ctx)
	if err != nil {
		return Credentials{}, fmt.Errorf("zim: %s: getting credentials: %w", action, err)
	}
	if err := creds.Validate(); err != nil {
		return Credentials{}, invalidCredentials(action, err)
	}
	return creds, nil
}

// invalidCredentials reports malformed credentials from a CredentialsSource as a
// configuration error; the validation error is not wrapped so that the result
// does not also match ErrInvalidParameter (a caller's bad request).
func invalidCredentials(action string, verr error) error {
	return fmt.Errorf("zim: %s: credentials source: %v: %w", action, verr, ErrConfiguration)
}

// send makes one HTTP request and turns its outcome into the raw body or an
// error of one of the package's classes. It records what came back in resp.
func (c *Client) send(req *http.Request, action string, attempt int, resp *Response) ([]byte, error) {
	ctx := req.Context()
	t0 := time.Now()
	hr, err := c.http.Do(req)
	if err != nil {
		return nil, c.noAnswer(ctx, action, attempt, time.Since(t0), err)
	}
	defer hr.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hr.Body, maxBodyBytes))
	if err != nil {
		return nil, c.noAnswer(ctx, action, attempt, time.Since(t0), err)
	}
	latency := time.Since(t0)

	resp.HTTPStatus = hr.StatusCode
	env, rerr := decodeResponse(hr.StatusCode, raw)
	resp.Code, resp.Message, resp.RequestID = env.Code, env.Message, env.RequestID
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "zim: attempt",
			slog.String("action", action),
			slog.Int("attempt", attempt),
			slog.Int("code", env.Code),
			slog.String("request_id", env.RequestID),
			slog.Int("http_status", hr.StatusCode),
			slog.Duration("latency", latency))
	}
	if rerr != nil {
		rerr.Action = action
		return nil, rerr
	}
	if env.Code != 0 {
		return nil, &APIError{Action: action, Code: env.Code, Message: env.Message, RequestID: env.RequestID, HTTPStatus: hr.StatusCode}
	}
	return raw, nil
}

// noAnswer classifies a request that got no (complete) answer: the caller's
// context ending, or a transport failure worth a retry.
func (c *Client) noAnswer(ctx context.Context, action string, attempt int, latency time.Duration, err error) error {
	// The signed URL must not reach error strings or logs.
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = c.redactedURL(action)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "zim: attempt",
			slog.String("action", action),
			slog.Int("attempt", attempt),
			slog.Duration("latency", latency),
			slog.String("error", err.Error()))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("zim: %s: no answer before the context ended: %w", action, ctx.Err())
	}
	// An HTTP client timeout matches context.DeadlineExceeded; hide that, since
	// the caller's own deadline has not passed.
	if errors.Is(err, context.DeadlineExceeded) {
		if ue != nil {
			ue.Err = &attemptTimeout{msg: ue.Err.Error()}
		} else {
			err = &attemptTimeout{msg: err.Error()}
		}
	}
	return transportError(action, err)
}
