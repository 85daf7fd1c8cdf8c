// Package secret supplies ZEGO credentials from an AWS Secrets Manager secret:
// a zim.CredentialsSource that fetches lazily, caches for a TTL and refreshes
// when ZEGO reports an invalid signature, so a rotated secret is picked up
// without a redeploy.
//
// # The secret
//
// SecretString is JSON of the form
//
//	{"AppId": 1234567890, "ServerSecret": "<32 hex characters>"}
//
// AppId may also be a numeric string. Other fields are ignored, so the secret
// may carry a description or rotation notes. See Parse for the exact rules.
//
// # Fetching
//
// One GetSecretValue per TTL in the steady state: concurrent callers share the
// fetch in flight (golang.org/x/sync/singleflight), and a failed fetch is not
// cached, so the next caller tries again. Refresh is deduplicated the same way
// and rate-limited by WithMinRefreshInterval. A caller never waits past its
// context; the fetch it started goes on (bounded by WithFetchTimeout) and
// serves the next caller.
//
// # Init and frozen environments
//
// The function calls Credentials during init with a bounded context, so that
// the fetch overlaps other set-up; a fetch still in flight when that bound
// passes goes on, and the first invocation's call joins it. Lambda freezes the process
// between invocations, and wall time passes while the fetch's goroutine is
// stopped: a fetch found past its own timeout after a thaw is not joined (its
// connection is likely dead and its timer has not run yet); the caller starts
// a fresh one. The stopped fetch then ends on its timer, and a late answer
// from it never replaces a newer value.
//
// # Stale while refreshing, and on error
//
// Past the TTL, within WithStaleGrace (15 minutes by default), callers get the
// cached credentials at once while one fetch refreshes them in the
// background: an instance called after a quiet spell (provisioned
// concurrency) does not wait for Secrets Manager. When Secrets Manager cannot
// answer (throttling, an outage, a timeout), the cached credentials stay in
// use until the grace period ends, since ZEGO still accepts them; each failed
// fetch is logged once and StaleServed counts the answers given meanwhile.
// Nothing cached, a configuration error, or credentials ZEGO refused (Refresh
// after an invalid signature) are never covered this way: those calls wait
// for a fetch of their own.
//
// # Errors
//
// Every error is an *Error that matches ErrConfiguration (not found, access
// denied, cannot decrypt, refused, malformed value) or ErrUnavailable
// (throttling, service or network failures, a fetch past WithFetchTimeout,
// the caller's context ending). None matches context.DeadlineExceeded or
// context.Canceled: those mean a call to ZEGO may or may not have happened,
// while a slow Secrets Manager means nothing was sent. The AWS error stays
// reachable with errors.As (smithy.APIError), a malformed value with
// *FieldError. No error or log line contains the secret's value.
package secret
