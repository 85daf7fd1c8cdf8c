package zim

import (
	"errors"
	"fmt"
)

// Error classes. Every error the client returns for a ZEGO answer is an
// *APIError that matches exactly one of these with errors.Is; the class decides
// whether the client retries (see Retryable).
var (
	// ErrRateLimited: ZEGO's rate limits (codes 7, 660300005, 660300006). Retried with a longer backoff.
	ErrRateLimited = errors.New("zim: rate limited by ZEGO")
	// ErrTemporary: ZEGO was busy or failed internally (1, 660000001, 660000003, 100000015). Retried.
	ErrTemporary = errors.New("zim: temporary ZEGO error")
	// ErrSignatureExpired: the timestamp was outside ZEGO's ±10 minute window (100000004). Re-signed and retried once.
	ErrSignatureExpired = errors.New("zim: signature expired (check the clock)")
	// ErrSignatureInvalid: the signature did not verify (100000005); credentials are refreshed once, then it is final.
	ErrSignatureInvalid = errors.New("zim: invalid signature (wrong ServerSecret for this AppId)")
	// ErrConfiguration: the AppId, its secret or its ZIM setup is wrong (3, 100000000, 100000001, 100000010, 100000011, 100000016, 100000017).
	ErrConfiguration = errors.New("zim: configuration error")
	// ErrCommonParameter: a common query parameter was empty or malformed (100000002, 100000003, 100000006-100000009, 100000013, 100000014): a client bug.
	ErrCommonParameter = errors.New("zim: malformed common parameter")
	// ErrInvalidParameter: the request's own fields were refused (2, 660000002), or failed validation before sending.
	ErrInvalidParameter = errors.New("zim: invalid parameter")
	// ErrConversationNotFound: the conversation does not exist (660800002).
	ErrConversationNotFound = errors.New("zim: conversation does not exist")
	// ErrUserNotFound: the user is not registered or does not exist (660500002, 660700012, 660700015, 660200001, 51102).
	ErrUserNotFound = errors.New("zim: user does not exist")
	// ErrUnknownCode: any other non-zero code. Permanent.
	ErrUnknownCode = errors.New("zim: unexpected ZEGO code")

	// ErrBadResponse: the answer was not ZEGO's JSON envelope (see *ResponseError).
	// Retried when the HTTP status was 5xx or 429.
	ErrBadResponse = errors.New("zim: unexpected answer from ZEGO")
	// ErrTransport: the request did not get an answer (connection refused, reset, dropped). Retried.
	ErrTransport = errors.New("zim: transport error")
	// ErrThrottled: the client-side rate limiter had no slot before the context's deadline.
	ErrThrottled = errors.New("zim: throttled: no rate-limit slot before the deadline")
)

// APIError is a non-zero Code from ZEGO.
type APIError struct {
	Action     string // API action, e.g. "DeleteConv"
	Code       int
	Message    string
	RequestID  string
	HTTPStatus int
}

func (e *APIError) Error() string {
	return fmt.Sprintf("zim: %s: code %d (%s), request id %q, HTTP %d", e.Action, e.Code, e.Message, e.RequestID, e.HTTPStatus)
}

// Is reports whether target is this error's class.
func (e *APIError) Is(target error) bool { return target == ClassOf(e.Code) }

// ResponseError is an answer that was not ZEGO's JSON envelope.
type ResponseError struct {
	Action     string
	HTTPStatus int
	// Snippet is the start of the body (at most 256 bytes), for logs.
	Snippet string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("zim: %s: HTTP %d, answer is not ZEGO's JSON envelope: %q", e.Action, e.HTTPStatus, e.Snippet)
}

// Is makes every *ResponseError match ErrBadResponse.
func (e *ResponseError) Is(target error) bool { return target == ErrBadResponse }

// ValidationError is a request that breaks a rule before anything is sent.
type ValidationError struct {
	Field string // JSON field name, e.g. "ConvId"
	Rule  string // e.g. "must not be empty"
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s %s", e.Field, e.Rule) }

// Is makes every *ValidationError match ErrInvalidParameter.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidParameter }

// ClassOf maps a ZEGO return code to its error class; nil for 0.
func ClassOf(code int) error {
	switch code {
	case 0:
		return nil
	case 7, 660300005, 660300006:
		return ErrRateLimited
	case 1, 660000001, 660000003, 100000015:
		return ErrTemporary
	case 100000004:
		return ErrSignatureExpired
	case 100000005:
		return ErrSignatureInvalid
	case 3, 100000000, 100000001, 100000010, 100000011, 100000016, 100000017:
		return ErrConfiguration
	case 100000002, 100000003, 100000006, 100000007, 100000008, 100000009, 100000013, 100000014:
		return ErrCommonParameter
	case 2, 660000002:
		return ErrInvalidParameter
	case 660800002:
		return ErrConversationNotFound
	case 660500002, 660700012, 660700015, 660200001, 51102:
		return ErrUserNotFound
	}
	return ErrUnknownCode
}
