// Package zim is a client for ZEGOCLOUD's ZIM server API: it signs requests,
// sends them at a rate ZEGO accepts, retries what is worth retrying and turns
// ZEGO's return codes into errors a caller can branch on.
//
//	c, err := zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: serverSecret})
//	if err != nil { ... }
//	resp, err := c.DeleteConversation(ctx, zim.DeleteConvRequest{
//		FromUserID: "alice", ConvID: "bob", ConvType: zim.ConvTypePeer,
//	})
//	switch {
//	case err == nil, errors.Is(err, zim.ErrConversationNotFound):
//		// deleted, or already gone
//	case zim.Retryable(err):
//		// still failing after the client's own retries: try again later
//	}
//
// # Signing
//
// Every request carries AppId, SignatureNonce, Timestamp, SignatureVersion=2.0
// and Signature in its query string; the API's own fields go in a JSON body.
// The signature is hex(md5(AppId + SignatureNonce + ServerSecret + Timestamp))
// (see Sign). Each attempt, retries included, gets a new nonce of 8 bytes from
// crypto/rand, a new timestamp and so a new signature: ZEGO refuses a timestamp
// more than 10 minutes off its clock. The ServerSecret and signatures never
// appear in errors or logs.
//
// New takes one CredentialsSource, asked on every attempt: StaticCredentials
// for a fixed AppID and ServerSecret (checked by New), or a source of its own
// that follows rotations, so that a rotated secret takes effect without a new
// Client.
//
// # Errors
//
// A call fails with one of these, each matched with errors.Is or errors.As:
//
//   - *ValidationError (matches ErrInvalidParameter): the request broke a rule
//     before anything was sent; Field and Rule say which.
//   - *APIError: ZEGO answered a non-zero Code. It matches exactly one class:
//     ErrRateLimited, ErrTemporary, ErrSignatureExpired, ErrSignatureInvalid,
//     ErrConfiguration, ErrCommonParameter, ErrInvalidParameter,
//     ErrConversationNotFound, ErrUserNotFound or ErrUnknownCode (see ClassOf).
//     DeleteConversation reports a conversation that does not exist as
//     ErrConversationNotFound; deleting idempotently, treat it as success.
//   - *ResponseError (matches ErrBadResponse): the answer was not ZEGO's JSON
//     envelope; it keeps the HTTP status and the first 256 bytes of the body.
//   - ErrTransport: no answer (refused, reset, dropped, or the HTTP client's own
//     timeout for one attempt); the *url.Error is reachable with errors.As.
//   - ErrThrottled: the client's rate limiter had no slot before the context's
//     deadline, so nothing was sent. (On a retry the last error is returned
//     instead: it says more.)
//   - context.DeadlineExceeded or context.Canceled: the caller's context ended
//     before an answer came, during a request or a cancelled wait. Only the
//     caller's context produces these; a wait the deadline would cut short is
//     not started (see Rate limiting and Retries).
//   - Errors of a CredentialsSource, wrapped; malformed credentials from it match
//     ErrConfiguration.
//
// Endpoint methods return a non-nil *Response whenever a request was sent, also
// with an error, so that attempts, HTTP status, latency and ZEGO's RequestId can
// be logged.
//
// # Rate limiting
//
// ZEGO allows DeleteConv 20 requests per second per AppId, across every caller,
// counted over a one-second window. Each Client has one token-bucket limiter
// (burst 1) that every method and every attempt, retries included, waits on
// before sending.
// Requests are spaced at 97% of the configured rate (WithRateLimit, default 20):
// at exactly 20 per second, 50ms apart, a little network jitter can put a 21st
// arrival inside ZEGO's one-second window, and the 3% margin (about 51.5ms apart
// at 20/s) absorbs that. A request whose caller woke more than 15ms after its
// reserved time (a stalled process) takes the next slot instead of going at
// once, so a stall cannot release several due requests together. The limit
// is per Client: callers sharing an AppId must
// divide ZEGO's budget between them, or share one through WithLimiter.
//
// WithLimiter replaces the Client's own limiter with any Limiter, a type with
// one method, Wait(ctx) error, that every attempt calls before it is sent; a
// *rate.Limiter is one. Several processes sharing an AppId can so take their
// slots from one budget they share (this project's Lambda function takes them
// from a DynamoDB table every instance uses) instead of each owning a fixed
// slice of it. QueryConversationList and DeleteConversation wait on the same
// Limiter.
//
// A limiter wait that would pass the context's deadline fails at once with
// ErrThrottled instead of sending a request that cannot be answered in time.
// A Limiter of one's own keeps this contract: an error from Wait while the
// context is live means no slot in time (ErrThrottled, or the last answer on a
// retry); with the context ended, the context's error is returned.
//
// # Retries
//
// Retryable decides which errors are transient: ErrRateLimited, ErrTemporary,
// ErrTransport, and ErrBadResponse with HTTP 5xx or 429. They are retried with
// exponential backoff and equal jitter (see RetryPolicy), at least
// RateLimitedMinBackoff apart after a rate-limit answer. The body is the same on
// every attempt; the signature is new.
//
// Two signature errors get one special retry each, without a backoff: after
// ErrSignatureExpired the request is re-signed and sent again once; after
// ErrSignatureInvalid the CredentialsSource's Refresh is called once and the
// request is sent with what it returns (skipped when it returns the same
// credentials, as StaticCredentials does). A second such answer is final.
//
// Every attempt counts against RetryPolicy.MaxAttempts. The client never waits
// past the context's deadline: when the next backoff would end after it, the
// call returns the last error at once.
//
// Backoff retries are bounded by a retry budget per Client, so that during a
// ZEGO brown-out retries of failing requests cannot take every rate-limit slot
// from fresh ones (the idea of gRPC's retry throttling and the AWS SDK's retry
// token bucket). The budget is a bucket of RetryPolicy.RetryBudget tokens (10
// by default), full at New. Each backoff retry takes a token (retries of
// rate-limit answers excepted: those are paced, never dropped); each attempt
// ZEGO answers with success or a final code puts back RetryBudgetRatio tokens
// (0.1), and a retry so answered also gives its own token back. With the
// bucket empty, a retryable failure is returned at once instead of retried, still
// Retryable, for the caller to try again later. So failing retries are at most
// 10 in a row, then about one per ten healthy answers: with half of the
// requests failing for good, the healthy half still gets about 45% of the
// slots instead of the 20% that four attempts each would leave it. The two
// signature retries above do not take tokens. RetryBudget 0 disables the
// budget.
//
// # Connections
//
// The default HTTP client keeps connections for reuse and speaks HTTP/2 where
// the server offers it, so concurrent calls share one connection. net/http does
// not share a connection still being opened, though: ten calls on a cold Client
// open ten. Preconnect opens one ahead (DNS, TCP and TLS) without sending a
// request, and calls made meanwhile wait for it. Over HTTP/2 the connection
// goes into the pool at once, and ten concurrent calls share it; over HTTP/1.1
// the first call takes it instead of dialling, and each other call in flight
// opens its own (a connection carries one request at a time); up to
// MaxRateLimit stay open for reuse. Pooled connections stay open 15 minutes
// without a request, not net/http's 90 s, so that an instance called minutes
// apart keeps its connection; one the server closes is dropped, and a request
// that races that close fails as ErrTransport and is retried. Preconnect is
// optional: without it the first call connects. WithDialContext replaces the
// TCP dialer and keeps all of this.
//
// The default client trusts the system's certificate roots. On Linux, Go reads
// them from the file named by SSL_CERT_FILE (or the directories of
// SSL_CERT_DIR) when set, so a process can trust a local test server's CA
// through its environment alone. The file replaces the system bundle: to reach
// real HTTPS endpoints as well, give it both.
//
// # Testing with zimtest
//
// Package zimtest (pkg/zim/zimtest) runs an in-memory ZIM server that checks
// signatures, stores conversations, enforces ZEGO's rate limit and injects
// faults, so code using this client can be tested without ZEGO:
//
//	srv := zimtest.NewServer(zimtest.WithApp(appID, secret))
//	defer srv.Close()
//	c, _ := zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: secret}, zim.WithBaseURL(srv.URL))
//
// For tests of timing, combine WithClock and testing/synctest; for fixed
// signatures, WithNonceSource.
package zim
