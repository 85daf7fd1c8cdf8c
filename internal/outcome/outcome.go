// Package outcome names how a request ended (the contract's outcome classes),
// classifies errors into them, and shapes the answers' bodies and the EMF
// metric lines that report them.
package outcome

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Outcome is how one request ended, as the contract names it.
type Outcome string

// The outcomes of the contract's table.
const (
	Deleted            Outcome = "deleted"
	AlreadyDeleted     Outcome = "already_deleted"
	InvalidRequest     Outcome = "invalid_request"
	Forbidden          Outcome = "forbidden"
	Throttled          Outcome = "throttled"
	UpstreamError      Outcome = "upstream_error"
	Timeout            Outcome = "timeout"
	ConfigurationError Outcome = "configuration_error"
	Unavailable        Outcome = "unavailable"
	// Skipped is not attempted: an earlier message of the same FIFO group failed.
	Skipped Outcome = "skipped"
	// InternalError is a bug in the function (a recovered panic).
	InternalError Outcome = "internal_error"
	// Accepted is an AllConversations job handed to the queue to finish.
	Accepted Outcome = "accepted"
)

// Success reports whether the outcome needs nothing more from the caller: the
// conversation is gone (deletion is idempotent), or the job goes on through
// the queue.
func (o Outcome) Success() bool { return o == Deleted || o == AlreadyDeleted || o == Accepted }

// ErrorType is the Lambda errorType (and the API error code) of a failed outcome.
func (o Outcome) ErrorType() string {
	switch o {
	case InvalidRequest:
		return "InvalidRequest"
	case Forbidden:
		return "Forbidden"
	case Throttled:
		return "Throttled"
	case Timeout, Skipped:
		return "Timeout"
	case ConfigurationError:
		return "ConfigurationError"
	case Unavailable:
		return "Unavailable"
	case InternalError:
		return "InternalError"
	}
	return "UpstreamError"
}

// HTTPStatus is the API Gateway status of the outcome.
func (o Outcome) HTTPStatus() int {
	switch o {
	case Deleted, AlreadyDeleted:
		return http.StatusOK
	case Accepted:
		return http.StatusAccepted
	case InvalidRequest:
		return http.StatusBadRequest
	case Forbidden:
		return http.StatusForbidden
	case Throttled:
		return http.StatusTooManyRequests
	case Timeout, Skipped:
		return http.StatusGatewayTimeout
	case ConfigurationError, InternalError:
		return http.StatusInternalServerError
	case Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// Classify maps an error from the zim client, the secret cache or the
// configuration to its outcome. ctx is the context the call ran under: a call
// to ZEGO cut short by its deadline is a timeout whatever error it surfaced
// as. Secrets Manager failing, however slowly, is unavailable: nothing was
// sent to ZEGO, and a timeout would say the deletion may have happened.
func Classify(ctx context.Context, err error) Outcome {
	var cfgErr *config.Error
	switch {
	case err == nil:
		return Deleted
	case errors.Is(err, zim.ErrConversationNotFound):
		return AlreadyDeleted
	case errors.Is(err, zim.ErrInvalidParameter):
		return InvalidRequest
	case errors.As(err, &cfgErr), errors.Is(err, secret.ErrConfiguration),
		errors.Is(err, zim.ErrConfiguration), errors.Is(err, zim.ErrSignatureInvalid), errors.Is(err, zim.ErrSignatureExpired):
		return ConfigurationError
	case errors.Is(err, zim.ErrThrottled), errors.Is(err, zim.ErrRateLimited):
		return Throttled
	case errors.Is(err, secret.ErrUnavailable):
		return Unavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Timeout
	case errors.Is(err, zim.ErrTransport):
		if ctx.Err() != nil {
			return Timeout
		}
		return Unavailable
	}
	return UpstreamError
}

// Describe is the caller-facing reason for err: the field and rule, or ZEGO's
// code, message and RequestId. It never holds a secret: none of the errors it
// formats carries one.
func Describe(err error) string {
	var ve *zim.ValidationError
	var ae *zim.APIError
	var cfgErr *config.Error
	switch {
	case errors.As(err, &ve):
		if ve.Field == "" {
			return ve.Rule
		}
		return ve.Field + " " + ve.Rule
	case errors.As(err, &ae):
		return fmt.Sprintf("ZEGO answered code %d (%s), RequestId %q", ae.Code, ae.Message, ae.RequestID)
	case errors.As(err, &cfgErr):
		return "configuration error: " + err.Error()
	}
	return err.Error()
}

// ErrorField is the request field an invalid-request error names, if any.
func ErrorField(err error) string {
	var ve *zim.ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	return ""
}
