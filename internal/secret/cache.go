package secret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/singleflight"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// GetSecretValueAPI is the part of the Secrets Manager client the Cache uses;
// *secretsmanager.Client satisfies it.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Defaults for NewCache and its options.
const (
	DefaultTTL                = 5 * time.Minute
	DefaultMinRefreshInterval = time.Second
	DefaultFetchTimeout       = 10 * time.Second
	DefaultStaleGrace         = 15 * time.Minute
)

// Cache is a zim.CredentialsSource backed by one Secrets Manager secret. It is
// safe for concurrent use; one Cache per function instance gives one
// GetSecretValue per TTL in the steady state.
type Cache struct {
	api          GetSecretValueAPI
	secretID     string
	ttl          time.Duration
	minRefresh   time.Duration
	fetchTimeout time.Duration
	staleGrace   time.Duration
	now          func() time.Time
	log          *slog.Logger

	// group shares one fetch among concurrent callers. Each fetch has its
	// own key (its generation), so that the Cache decides which fetch a
	// caller may join.
	group singleflight.Group

	mu          sync.Mutex
	creds       zim.Credentials
	have        bool      // creds holds a successfully fetched value
	fetchedAt   time.Time // when creds was fetched
	lastRefresh time.Time // when the latest fetch started by Refresh started
	credsGen    uint64    // generation of the fetch creds came from
	inflight    *flight   // the fetch callers join; nil when none
	gen         uint64    // generation of the latest fetch started
	fetches     int
	// failedAt is when a fetch last failed as unavailable with creds still
	// within the grace period; zero once a fetch succeeds. While set, calls
	// past the TTL are answered with creds at once.
	failedAt time.Time
	refused  bool // ZEGO refused creds (see Refresh): never served stale
	// misconfigured is set when the latest fetch failed with a configuration
	// error: calls past the TTL then wait for a fetch of their own and get
	// its error, instead of the cached credentials.
	misconfigured bool
	staleServed   int
}

var _ zim.CredentialsSource = (*Cache)(nil)

// flight is one GetSecretValue in flight.
type flight struct {
	gen      uint64
	key      string    // its singleflight key
	deadline time.Time // by c.now: when its own timeout has passed
}

// Option configures a Cache.
type Option func(*Cache)

// WithClock sets the clock used for the TTL, the minimum refresh interval, the
// grace period and whether a fetch in flight is past its timeout (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// WithLogger logs fetches and failures to l (default: silent). The secret's
// value is never logged.
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.log = l } }

// WithMinRefreshInterval is the shortest time between two fetches caused by
// Refresh (default DefaultMinRefreshInterval): a wrong secret must not make
// every message of a batch call Secrets Manager. It also spaces the
// background retries while stale credentials are served (see WithStaleGrace).
func WithMinRefreshInterval(d time.Duration) Option { return func(c *Cache) { c.minRefresh = d } }

// WithFetchTimeout bounds one GetSecretValue call, retries by the SDK included
// (default DefaultFetchTimeout). The call does not end with the context of the
// caller that started it, because other callers may be waiting for it.
func WithFetchTimeout(d time.Duration) Option { return func(c *Cache) { c.fetchTimeout = d } }

// WithStaleGrace is how long past the TTL the cached credentials stay in use
// while they are refreshed (default DefaultStaleGrace; 0 or less turns this
// off, and every call past the TTL waits for a fetch): a call after a quiet
// spell must not wait for Secrets Manager, and a throttled or failing Secrets
// Manager must not stop every request while ZEGO still accepts the
// credentials it gave earlier.
//
// Past the TTL, callers get the cached credentials at once while one fetch
// runs in the background. After a refresh fails as ErrUnavailable, the Cache
// retries in the background at most once per minimum refresh interval until a
// fetch succeeds or the grace period ends; each failed fetch is logged once,
// and StaleServed counts the answers given meanwhile. A configuration
// error (access denied, secret deleted, malformed value) is returned as it
// is, since it will not pass on its own, and so is any error for credentials
// ZEGO refused (see Refresh). AWS's aws-secretsmanager-caching-go also returns
// the cached value when a refresh fails, for any error and without a bound.
func WithStaleGrace(d time.Duration) Option { return func(c *Cache) { c.staleGrace = d } }

// NewCache returns a Cache for secretID (a name or an ARN) that keeps fetched
// credentials for ttl (DefaultTTL when ttl <= 0). Nothing is fetched until
// credentials are first needed.
func NewCache(api GetSecretValueAPI, secretID string, ttl time.Duration, opts ...Option) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c := &Cache{
		api:          api,
		secretID:     secretID,
		ttl:          ttl,
		minRefresh:   DefaultMinRefreshInterval,
		fetchTimeout: DefaultFetchTimeout,
		staleGrace:   DefaultStaleGrace,
		now:          time.Now,
		log:          slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.fetchTimeout <= 0 {
		c.fetchTimeout = DefaultFetchTimeout
	}
	return c
}

// SecretID is the secret name or ARN the Cache reads.
func (c *Cache) SecretID() string { return c.secretID }

// Fetches is how many GetSecretValue calls the Cache has made.
func (c *Cache) Fetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// StaleServed is how many Credentials calls were answered with credentials
// past their TTL after a refresh failed because Secrets Manager could not be
// reached (see WithStaleGrace); answers while a refresh is merely running do
// not count. The difference over an invocation is its count.
func (c *Cache) StaleServed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.staleServed
}

// Credentials returns the cached credentials while they are younger than the
// TTL. Past the TTL, within the grace period (see WithStaleGrace), it still
// returns them at once and refreshes them in the background, one fetch at a
// time; past the grace, refused by ZEGO (see Refresh), or with nothing
// cached, it fetches and waits. Concurrent callers share one fetch. A failed
// fetch is not cached: the next call tries again.
//
// The caller waits no longer than ctx allows; when ctx ends first the error
// matches ErrUnavailable (not ctx.Err(): nothing was sent to ZEGO), and the
// fetch goes on for whoever asks next.
func (c *Cache) Credentials(ctx context.Context) (zim.Credentials, error) {
	c.mu.Lock()
	now := c.now()
	if c.freshLocked(now) {
		creds := c.creds
		c.mu.Unlock()
		return creds, nil
	}
	c.dropOverdueLocked(ctx, now)
	if !c.misconfigured && c.staleUsableLocked(now) {
		// Past the TTL, within the grace: answer at once, and refresh in the
		// background, one fetch at a time (stale-while-revalidate), so that a
		// call after a quiet spell does not wait for Secrets Manager. After a
		// failed fetch, retry no more often than the minimum refresh interval.
		if c.inflight == nil && (c.failedAt.IsZero() || now.Sub(c.failedAt) >= c.minRefresh) {
			c.joinLocked(ctx)
		}
		if !c.failedAt.IsZero() {
			// Secrets Manager is failing: this answer is a stand-in.
			c.staleServed++
		}
		creds := c.creds
		c.mu.Unlock()
		return creds, nil
	}
	if err := ctx.Err(); err != nil && c.inflight == nil {
		c.mu.Unlock()
		return zim.Credentials{}, c.ctxError(err)
	}
	ch := c.joinLocked(ctx)
	c.mu.Unlock()
	creds, err := c.wait(ctx, ch)
	if err == nil || ctx.Err() != nil || !errors.Is(err, ErrUnavailable) {
		return creds, err
	}
	// The fetch failed: finish has decided whether stale credentials may
	// stand in (another fetch may even have succeeded meanwhile).
	c.mu.Lock()
	defer c.mu.Unlock()
	now = c.now()
	switch {
	case c.freshLocked(now):
		return c.creds, nil
	case !c.failedAt.IsZero() && c.staleUsableLocked(now):
		c.staleServed++
		return c.creds, nil
	}
	return zim.Credentials{}, err
}

// freshLocked reports whether the cached credentials may be used as they are
// at now: younger than the TTL, and not refused by ZEGO since (a failed
// Refresh leaves them cached, but every call signed with them would fail).
// c.mu must be held.
func (c *Cache) freshLocked(now time.Time) bool {
	return c.have && !c.refused && now.Sub(c.fetchedAt) < c.ttl
}

// staleUsableLocked reports whether creds may stand in for a failed fetch at
// now: ZEGO has not refused them and they are past their TTL by less than the
// grace period. c.mu must be held.
func (c *Cache) staleUsableLocked(now time.Time) bool {
	return c.staleGrace > 0 && c.have && !c.refused && now.Sub(c.fetchedAt) < c.ttl+c.staleGrace
}

// Refresh is called when ZEGO said "invalid signature" to stale. When the
// Cache already holds other credentials (another caller refreshed), it returns
// them without fetching. Otherwise it fetches anew, sharing the fetch with
// concurrent callers, but not sooner than the minimum refresh interval after
// the previous refresh started: within it, the current credentials are
// returned as they are. The first refresh always fetches, so a secret rotated
// moments after it was cached is picked up at once. A failed fetch is returned
// as an error: the refused credentials are never served stale.
func (c *Cache) Refresh(ctx context.Context, stale zim.Credentials) (zim.Credentials, error) {
	c.mu.Lock()
	if c.have && c.creds != stale {
		creds := c.creds
		c.mu.Unlock()
		return creds, nil
	}
	now := c.now()
	c.dropOverdueLocked(ctx, now)
	if c.inflight == nil && c.have && !c.lastRefresh.IsZero() && now.Sub(c.lastRefresh) < c.minRefresh {
		creds := c.creds
		c.mu.Unlock()
		c.log.LogAttrs(ctx, slog.LevelDebug, "secret: refresh skipped, fetched moments ago",
			slog.String("secret_id", c.secretID), slog.Duration("min_refresh_interval", c.minRefresh))
		return creds, nil
	}
	if err := ctx.Err(); err != nil && c.inflight == nil {
		c.mu.Unlock()
		return zim.Credentials{}, c.ctxError(err)
	}
	if c.inflight == nil {
		c.lastRefresh = now
	}
	if c.have && c.creds == stale {
		// ZEGO refused them: they are no fallback if this fetch fails.
		c.refused = true
	}
	ch := c.joinLocked(ctx)
	c.mu.Unlock()
	return c.wait(ctx, ch)
}

// dropOverdueLocked stops new callers joining a fetch whose own timeout has
// passed by the Cache's clock. Lambda freezes the process between
// invocations: a fetch started before a freeze may still look in flight after
// the thaw, its timer not yet run and its connection likely dead. The next
// caller starts a fresh fetch instead of inheriting that one's failure; the old
// fetch ends on its timer, and its result is kept only if no newer fetch has
// stored one. c.mu must be held.
func (c *Cache) dropOverdueLocked(ctx context.Context, now time.Time) {
	if c.inflight == nil || now.Before(c.inflight.deadline) {
		return
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "secret: fetch in flight is past its timeout (frozen environment?); starting another",
		slog.String("secret_id", c.secretID), slog.Duration("fetch_timeout", c.fetchTimeout),
		slog.Duration("overdue", now.Sub(c.inflight.deadline)))
	c.inflight = nil
}

// joinLocked joins the fetch in flight or starts one, and returns the channel
// its result arrives on. c.mu must be held.
func (c *Cache) joinLocked(ctx context.Context) <-chan singleflight.Result {
	if c.inflight == nil {
		c.gen++
		c.inflight = &flight{gen: c.gen, key: strconv.FormatUint(c.gen, 10), deadline: c.now().Add(c.fetchTimeout)}
		c.fetches++
	}
	f := c.inflight
	// DoChan runs the function only when it starts the fetch; a caller that
	// joins gets the same result on its own channel.
	return c.group.DoChan(f.key, func() (any, error) {
		// Detached from the caller's cancellation (others may join), bounded
		// by the fetch timeout; request-scoped values are kept.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		defer cancel()
		r := c.fetch(fctx)
		c.finish(fctx, f, r)
		if r.err != nil {
			return nil, r.err
		}
		return r.creds, nil
	})
}

// result is what one fetch produced.
type result struct {
	creds   zim.Credentials
	version string
	err     error
}

func (c *Cache) fetch(ctx context.Context) result {
	out, err := c.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.secretID)})
	if err != nil {
		e := classify(c.secretID, err)
		if ctx.Err() != nil && isContextError(err) {
			// ctx is detached from callers: only the fetch timeout ends it.
			e.Reason = fmt.Sprintf("Secrets Manager did not answer within %v (the fetch timeout): retry later", c.fetchTimeout)
		}
		return result{err: e}
	}
	if out == nil {
		return result{err: &Error{SecretID: c.secretID, Class: ErrUnavailable, Reason: "Secrets Manager returned no value: retry later"}}
	}
	if out.SecretString == nil && len(out.SecretBinary) > 0 {
		return result{err: &Error{SecretID: c.secretID, Class: ErrConfiguration,
			Reason: "malformed secret: store the credentials as SecretString " + Expected,
			Err:    &FieldError{Field: FieldSecretString, Rule: "is missing: the secret holds SecretBinary only"}}}
	}
	creds, err := Parse(aws.ToString(out.SecretString))
	if err != nil {
		return result{err: &Error{SecretID: c.secretID, Class: ErrConfiguration,
			Reason: "malformed secret: fix its value in Secrets Manager", Err: err}}
	}
	return result{creds: creds, version: aws.ToString(out.VersionId)}
}

// finish records a fetch's result. Its waiters are released when the fetch
// function returns, after the log line.
func (c *Cache) finish(ctx context.Context, f *flight, r result) {
	c.mu.Lock()
	now := c.now()
	changed, stale := false, false
	// A fetch overtaken by a newer one (see dropOverdueLocked) does not
	// overwrite that one's value or state.
	if f.gen > c.credsGen {
		switch {
		case r.err == nil:
			changed = c.have && c.creds != r.creds
			c.creds, c.have, c.credsGen = r.creds, true, f.gen
			c.fetchedAt = now
			c.failedAt, c.refused, c.misconfigured = time.Time{}, false, false
		case errors.Is(r.err, ErrUnavailable) && c.staleUsableLocked(now):
			c.failedAt, c.misconfigured, stale = now, false, true
		default:
			c.failedAt = time.Time{}
			c.misconfigured = errors.Is(r.err, ErrConfiguration)
		}
	}
	age, until := now.Sub(c.fetchedAt), c.fetchedAt.Add(c.ttl+c.staleGrace)
	if c.inflight == f {
		c.inflight = nil
	}
	c.mu.Unlock()

	switch {
	case stale:
		c.log.LogAttrs(ctx, slog.LevelWarn, "secret: fetch failed, serving the cached credentials past their TTL",
			slog.String("secret_id", c.secretID), slog.String("error", r.err.Error()),
			slog.Duration("credentials_age", age), slog.Time("stale_until", until))
	case r.err != nil:
		c.log.LogAttrs(ctx, slog.LevelWarn, "secret: fetch failed",
			slog.String("secret_id", c.secretID), slog.String("error", r.err.Error()))
	case changed:
		c.log.LogAttrs(ctx, slog.LevelInfo, "secret: credentials changed",
			slog.String("secret_id", c.secretID), slog.String("version_id", r.version),
			slog.Uint64("app_id", uint64(r.creds.AppID)))
	default:
		c.log.LogAttrs(ctx, slog.LevelDebug, "secret: fetched",
			slog.String("secret_id", c.secretID), slog.String("version_id", r.version),
			slog.Uint64("app_id", uint64(r.creds.AppID)))
	}
}

// wait returns the fetch's result, or gives up when ctx ends.
func (c *Cache) wait(ctx context.Context, ch <-chan singleflight.Result) (zim.Credentials, error) {
	select {
	case res := <-ch:
		if res.Err != nil {
			return zim.Credentials{}, res.Err
		}
		return res.Val.(zim.Credentials), nil
	case <-ctx.Done():
		return zim.Credentials{}, c.ctxError(ctx.Err())
	}
}

// ctxError is the caller's context ending before the secret arrived. It says
// which way ctx ended but does not wrap ctx.Err() (see Error).
func (c *Cache) ctxError(err error) error {
	return &Error{SecretID: c.secretID, Class: ErrUnavailable,
		Reason: "gave up waiting for Secrets Manager: the caller's context ended", Err: causeText(err.Error())}
}
