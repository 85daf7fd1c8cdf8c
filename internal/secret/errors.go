package secret

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Error classes. Every error the Cache returns is an *Error that matches
// exactly one of them with errors.Is.
var (
	// ErrConfiguration: retrying will not help until someone fixes the secret,
	// the function's permissions or its settings: the secret is not found,
	// access is denied, it cannot be decrypted, Secrets Manager refused the
	// request (e.g. the secret is scheduled for deletion), or its value is
	// malformed.
	ErrConfiguration = errors.New("secrets manager configuration error")
	// ErrUnavailable: Secrets Manager could not answer now (throttling,
	// internal errors, network failures, timeouts, the caller's context
	// ending); a later attempt may succeed. Nothing was sent to ZEGO.
	ErrUnavailable = errors.New("secrets manager unavailable")
)

// Error is a failure to get credentials from the secret.
//
// errors.Is matches Class (ErrConfiguration or ErrUnavailable), and errors.As
// finds the SDK's smithy.APIError (with its AWS error code) or a *FieldError
// for a malformed value. It never matches context.DeadlineExceeded or
// context.Canceled: callers read those as "the remote call may have happened"
// (a ZEGO timeout), while a slow Secrets Manager means nothing was sent. The
// message names the secret and what to do; it never contains the secret's
// value.
type Error struct {
	SecretID string
	Class    error  // ErrConfiguration or ErrUnavailable
	Reason   string // what happened and what to do
	Err      error  // the cause; nil when Reason says it all
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%v: secret %q: %s", e.Class, e.SecretID, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the class and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

// classify turns a GetSecretValue failure into an *Error. A timeout is
// unavailable, and its cause is kept as text only (see Error). Otherwise AWS
// error codes decide; without one (an answer the SDK could not decode, e.g.
// moto's XML AccessDenied), an HTTP 401/403 is a configuration error and
// anything else is transient.
func classify(secretID string, err error) *Error {
	e := &Error{SecretID: secretID, Class: ErrUnavailable, Err: err}
	if isContextError(err) {
		// E.g. the dialer's own timeout, which matches context.DeadlineExceeded.
		e.Reason, e.Err = "timed out reaching Secrets Manager: retry later", causeText(err.Error())
		return e
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ResourceNotFoundException":
			e.Class, e.Reason = ErrConfiguration, "not found: check ZEGO_SECRET_ID (name or ARN) and that the function runs in the secret's region"
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId":
			e.Class, e.Reason = ErrConfiguration, fmt.Sprintf("access denied: check the function role's secretsmanager:GetSecretValue permission on %s (and kms:Decrypt on its KMS key)", secretID)
		case "DecryptionFailure":
			e.Class, e.Reason = ErrConfiguration, "cannot be decrypted: check the function role's kms:Decrypt permission on the secret's KMS key and that the key is enabled"
		case "InvalidRequestException":
			e.Class, e.Reason = ErrConfiguration, "request refused: the secret may be scheduled for deletion or have no current version; restore it or point ZEGO_SECRET_ID at another"
		case "InvalidParameterException":
			e.Class, e.Reason = ErrConfiguration, "request refused: check that ZEGO_SECRET_ID is a valid secret name or ARN"
		case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded":
			e.Reason = "throttled by Secrets Manager: retry later"
		case "InternalServiceError", "InternalFailure", "ServiceUnavailable":
			e.Reason = "Secrets Manager failed internally: retry later"
		default:
			e.Reason = "Secrets Manager answered " + api.ErrorCode() + ": retry later"
		}
		return e
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() != 0 {
		switch status := resp.HTTPStatusCode(); status {
		case http.StatusUnauthorized, http.StatusForbidden:
			e.Class, e.Reason = ErrConfiguration, fmt.Sprintf("access denied (HTTP %d): check the function role's secretsmanager:GetSecretValue permission on %s", status, secretID)
		default:
			e.Reason = fmt.Sprintf("unexpected answer from Secrets Manager (HTTP %d): retry later", status)
		}
		return e
	}
	e.Reason = "could not reach Secrets Manager: check the network path (VPC endpoint or NAT) and retry"
	return e
}

func isContextError(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// causeText keeps a cause's message for the log without its identity, so that
// errors.Is does not find context.DeadlineExceeded through it.
type causeText string

func (c causeText) Error() string { return string(c) }
