package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/registry"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// zimCredentials is the secret cache (*secret.Cache), as the registry's keys
// need it: the AppId of the credentials the client signs with.
type zimCredentials interface {
	Credentials(ctx context.Context) (zim.Credentials, error)
}

// The status routes.
const (
	jobsPath = "/conversations/jobs"
	// jobLocation is a job's status URL, the Location of a 202.
	jobLocation = jobsPath + "/"
)

// errNoRegistry is why there is no status without the shared table.
var errNoRegistry = errors.New("job status needs the stack's state table (ZEGO_STATE_TABLE), and this function has none: no job is recorded")

// errNoStatus is the 503 of a status lookup the table did not answer.
var errNoStatus = errors.New("the job registry is unavailable for now; retry after the Retry-After delay")

// statusAnswer is how a status lookup ended: the status, or an error of a class.
type statusAnswer struct {
	st   registry.Status
	code string // "" when found; else NotFound, Forbidden, Unavailable, ConfigurationError
	err  error
}

// lookup finds a job's status: by jobID, or (jobID empty) fromUserID's
// latest. In JWT mode (claim set) only the caller's own user's jobs answer.
func (inv *invocation) lookup(ctx context.Context, jobID, fromUserID string, claim func() (string, bool)) statusAnswer {
	switch {
	case inv.h.setupErr != nil:
		return statusAnswer{code: "ConfigurationError", err: inv.h.setupErr}
	case inv.h.registry == nil:
		return statusAnswer{code: "NotFound", err: errNoRegistry}
	}
	caller, jwt := "", inv.h.callerClaim != "" && claim != nil
	if jwt {
		v, ok := claim()
		if !ok || v == "" {
			return statusAnswer{code: "Forbidden", err: fmt.Errorf("the caller has no JWT claim %q", inv.h.callerClaim)}
		}
		caller = v
		if jobID == "" && fromUserID != caller {
			return statusAnswer{code: "Forbidden", err: fmt.Errorf("FromUserId must be the caller's own user id (JWT claim %q)", inv.h.callerClaim)}
		}
	}
	var st registry.Status
	var err error
	if jobID != "" {
		st, err = inv.h.registry.Job(ctx, jobID)
	} else {
		creds, cerr := inv.h.creds.Credentials(ctx)
		if cerr != nil {
			o := outcome.Classify(ctx, cerr)
			inv.h.log.Error("job status: credentials", "requestId", inv.requestID, "outcome", o, "error", outcome.Describe(cerr))
			return statusAnswer{code: o.ErrorType(), err: cerr}
		}
		st, err = inv.h.registry.Latest(ctx, creds.AppID, fromUserID)
	}
	switch {
	case errors.Is(err, registry.ErrNotFound) && jobID != "":
		return statusAnswer{code: "NotFound", err: fmt.Errorf("no job %s (a job's status is kept 30 days)", jobID)}
	case errors.Is(err, registry.ErrNotFound):
		return statusAnswer{code: "NotFound", err: errors.New("FromUserId has no job (a job's status is kept 30 days)")}
	case err != nil:
		inv.h.log.Error("job status: registry unavailable", "requestId", inv.requestID, "jobId", jobID, "error", err.Error())
		return statusAnswer{code: "Unavailable", err: errNoStatus}
	case jwt && st.FromUserID != caller:
		return statusAnswer{code: "Forbidden", err: fmt.Errorf("the job is another user's; only the caller's own jobs answer (JWT claim %q)", inv.h.callerClaim)}
	}
	return statusAnswer{st: st}
}

// directStatus answers a direct invocation's status request: the status
// body, or a function error whose errorType is NotFound, Unavailable or
// ConfigurationError.
func (inv *invocation) directStatus(ctx context.Context, req request.Request) ([]byte, error) {
	a := inv.lookup(ctx, req.JobID, req.FromUserID, nil)
	inv.logStatus("direct", req.JobID, req.FromUserID, a)
	if a.code != "" {
		return nil, messages.InvokeResponse_Error{Type: a.code, Message: outcome.Describe(a.err)}
	}
	return json.Marshal(a.st)
}

// serveJobs answers GET /conversations/jobs?FromUserId=<id> and GET
// /conversations/jobs/{jobId}.
func (inv *invocation) serveJobs(ctx context.Context, r httpRequest, path string) httpResponse {
	if r.method != http.MethodGet {
		resp := inv.httpError(r, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("%s is not allowed on %s; use GET", r.method, path))
		resp.headers["Allow"] = http.MethodGet
		return resp
	}
	var jobID, user string
	if id, byID := strings.CutPrefix(path, jobLocation); byID {
		jobID = id
		if !request.ValidJobID(jobID) {
			return inv.httpInvalid(r, "jobId", "must be 32 lowercase hexadecimal characters")
		}
	} else {
		user = r.query["FromUserId"]
		if user == "" {
			return inv.httpInvalid(r, "FromUserId", "is required: GET /conversations/jobs?FromUserId=<id>")
		}
		if err := zim.ValidateID("FromUserId", user); err != nil {
			var ve *zim.ValidationError
			errors.As(err, &ve)
			return inv.httpInvalid(r, "FromUserId", ve.Rule)
		}
	}
	a := inv.lookup(ctx, jobID, user, func() (string, bool) { return r.claim(inv.h.callerClaim) })
	inv.logStatus(r.trigger, jobID, user, a)
	switch a.code {
	case "":
		return jsonResponse(http.StatusOK, a.st)
	case "NotFound":
		return jsonResponse(http.StatusNotFound, outcome.ErrorBody{Error: outcome.ErrorDetail{Code: "NotFound", Message: a.err.Error()}})
	case "Forbidden":
		return jsonResponse(http.StatusForbidden, outcome.ErrorBody{Error: outcome.ErrorDetail{Code: "Forbidden", Message: a.err.Error()}})
	case "Unavailable":
		resp := jsonResponse(http.StatusServiceUnavailable, outcome.ErrorBody{Error: outcome.ErrorDetail{Code: "Unavailable", Message: serverErrorMessage(outcome.Unavailable)}})
		resp.headers["Retry-After"] = "5"
		return resp
	}
	return jsonResponse(http.StatusInternalServerError, outcome.ErrorBody{Error: outcome.ErrorDetail{Code: "ConfigurationError", Message: serverErrorMessage(outcome.ConfigurationError)}})
}

// httpInvalid answers 400 for a status request's parameter.
func (inv *invocation) httpInvalid(r httpRequest, field, rule string) httpResponse {
	resp := inv.httpError(r, http.StatusBadRequest, "InvalidRequest", field+" "+rule)
	var body outcome.ErrorBody
	_ = json.Unmarshal(resp.body, &body)
	body.Error.Field = field
	return jsonResponse(http.StatusBadRequest, body)
}

// logStatus writes one line per status request.
func (inv *invocation) logStatus(trigger, jobID, user string, a statusAnswer) {
	attrs := []any{"requestId", inv.requestID, "trigger", trigger}
	if jobID != "" {
		attrs = append(attrs, "jobId", jobID)
	}
	if user != "" {
		attrs = append(attrs, "fromUserId", user)
	}
	if a.code != "" {
		inv.h.log.Info("job status", append(attrs, "answer", a.code, "error", a.err.Error())...)
		return
	}
	inv.h.log.Info("job status", append(attrs, "answer", "found", "jobId", a.st.JobID, "state", a.st.State)...)
}
