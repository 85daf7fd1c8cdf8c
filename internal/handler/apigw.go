package handler

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

const (
	routePath    = "/conversations/delete"
	maxBodyBytes = 16 << 10
)

// httpRequest is what the handler needs of either API Gateway payload format.
type httpRequest struct {
	trigger string // "http_api" or "rest_api"
	method  string
	// route is the path of the route API Gateway matched: routeKey's path
	// (2.0, e.g. "/conversations/delete" or "/{proxy+}") or resource (1.0);
	// "" or "$default" when there is none. params fills its variables.
	route     string
	params    map[string]string
	path      string // rawPath (2.0) or path (1.0): a fallback, and for messages
	stage     string
	query     map[string]string // the query string's parameters (the last of a repeated one)
	body      string
	base64    bool
	requestID string
	// claim returns the caller's JWT claim of that name, if the authorizer gave one.
	claim func(name string) (string, bool)
}

// httpResponse is the answer before it is shaped for the payload format.
type httpResponse struct {
	status  int
	headers map[string]string
	body    []byte
}

func (inv *invocation) httpAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, eventDecodeError("HTTP API", err)
	}
	routeKey := ev.RouteKey
	if routeKey == "" {
		routeKey = ev.RequestContext.RouteKey
	}
	// "POST /conversations/delete", "ANY /{proxy+}"; "$default" has no path.
	_, route, _ := strings.Cut(routeKey, " ")
	r := httpRequest{
		trigger: "http_api", method: ev.RequestContext.HTTP.Method, route: route, params: ev.PathParameters,
		path: ev.RawPath, stage: ev.RequestContext.Stage, query: ev.QueryStringParameters,
		body: ev.Body, base64: ev.IsBase64Encoded, requestID: ev.RequestContext.RequestID,
		claim: func(name string) (string, bool) {
			if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil {
				v, ok := a.JWT.Claims[name]
				return v, ok
			}
			return "", false
		},
	}
	if r.path == "" {
		r.path = ev.RequestContext.HTTP.Path
	}
	resp := inv.serveHTTP(ctx, r)
	return json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: resp.status, Headers: resp.headers, Body: string(resp.body)})
}

func (inv *invocation) restAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, eventDecodeError("REST API", err)
	}
	r := httpRequest{
		trigger: "rest_api", method: ev.HTTPMethod, route: ev.Resource, params: ev.PathParameters,
		path: ev.Path, stage: ev.RequestContext.Stage, query: ev.QueryStringParameters,
		body: ev.Body, base64: ev.IsBase64Encoded, requestID: ev.RequestContext.RequestID,
		claim: func(name string) (string, bool) {
			// Cognito user-pool and JWT authorizers put the token's claims under "claims".
			claims, _ := ev.RequestContext.Authorizer["claims"].(map[string]any)
			v, ok := claims[name].(string)
			return v, ok
		},
	}
	resp := inv.serveHTTP(ctx, r)
	return json.Marshal(events.APIGatewayProxyResponse{StatusCode: resp.status, Headers: resp.headers, Body: string(resp.body)})
}

func eventDecodeError(kind string, err error) error {
	return invokeError(outcome.InvalidRequest, fmt.Sprintf("malformed %s event: %s", kind, request.JSONProblem(err)))
}

// serveHTTP applies the contract's route, status and body rules.
func (inv *invocation) serveHTTP(ctx context.Context, r httpRequest) httpResponse {
	switch p := r.routePath(); {
	case p == routePath:
	case isJobsPath(p):
		return inv.serveJobs(ctx, r, p)
	default:
		return inv.httpError(r, http.StatusNotFound, "NotFound", fmt.Sprintf("no route for %s %s; send POST %s", r.method, r.path, routePath))
	}
	if r.method != http.MethodPost {
		resp := inv.httpError(r, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("%s is not allowed on %s; use POST", r.method, routePath))
		resp.headers["Allow"] = http.MethodPost
		return resp
	}
	body := []byte(r.body)
	if r.base64 {
		if base64.StdEncoding.DecodedLen(len(r.body)) > maxBodyBytes+3 {
			return inv.httpError(r, http.StatusRequestEntityTooLarge, "PayloadTooLarge", fmt.Sprintf("body is larger than %d bytes", maxBodyBytes))
		}
		var err error
		if body, err = base64.StdEncoding.DecodeString(r.body); err != nil {
			res := result{outcome: outcome.InvalidRequest, err: &zim.ValidationError{Field: "body", Rule: "is marked isBase64Encoded but is not valid base64"}}
			inv.record(r.trigger, "", request.Request{}, res)
			return inv.httpResult(res)
		}
	}
	if len(body) > maxBodyBytes {
		return inv.httpError(r, http.StatusRequestEntityTooLarge, "PayloadTooLarge", fmt.Sprintf("body is larger than %d bytes", maxBodyBytes))
	}

	req, err := request.ParseFrom(body, request.FromHTTP)
	var res result
	switch {
	case err != nil:
		res = result{outcome: outcome.InvalidRequest, err: err}
	case inv.h.callerClaim != "" && !inv.callerOwns(r, req):
		res = result{outcome: outcome.Forbidden, err: fmt.Errorf("FromUserId must be the caller's own user id (JWT claim %q)", inv.h.callerClaim)}
	default:
		res = inv.process(ctx, req)
	}
	inv.record(r.trigger, "", req, res)
	return inv.httpResult(res)
}

// routePath is the function's path the request is for (routePath, or a
// status route). The route API Gateway matched decides, since the path it
// sends depends on the stage and on a custom domain's base path mapping (1.0's
// path holds the base path and not the stage; 2.0's rawPath holds a named
// stage). A route with variables ("/conversations/jobs/{jobId}",
// "/{proxy+}") is completed with its path parameters, which hold neither.
//
// A $default route, or an event without a route, has no template: then the
// path is the route, as is or without a leading segment named like the stage.
func (r httpRequest) routePath() string {
	if r.route != "" && r.route != "$default" {
		return cleanPath(expandRoute(r.route, r.params))
	}
	p := cleanPath(r.path)
	if p == routePath || isJobsPath(p) {
		return p
	}
	if r.stage != "" && r.stage != "$default" {
		if rest, ok := strings.CutPrefix(p, "/"+r.stage); ok {
			return rest
		}
	}
	return p
}

// isJobsPath reports whether p is a status route: jobsPath, or jobsPath/<one segment>.
func isJobsPath(p string) bool {
	if p == jobsPath {
		return true
	}
	id, ok := strings.CutPrefix(p, jobLocation)
	return ok && id != "" && !strings.Contains(id, "/")
}

// expandRoute fills a route's path variables ("{id}", "{proxy+}") from params;
// a variable without a value stays as it is, so it matches nothing.
func expandRoute(route string, params map[string]string) string {
	segs := strings.Split(route, "/")
	for i, seg := range segs {
		if name, ok := strings.CutPrefix(seg, "{"); ok && strings.HasSuffix(name, "}") {
			if v, ok := params[strings.TrimSuffix(strings.TrimSuffix(name, "}"), "+")]; ok {
				segs[i] = v
			}
		}
	}
	return strings.Join(segs, "/")
}

func cleanPath(p string) string { return strings.TrimSuffix(p, "/") }

// callerOwns reports whether the JWT claim the function is configured with
// equals the request's FromUserId: in JWT mode, an end user may delete only
// their own conversations.
func (inv *invocation) callerOwns(r httpRequest, req request.Request) bool {
	v, ok := r.claim(inv.h.callerClaim)
	return ok && v != "" && v == req.FromUserID
}

// httpResult shapes a request result as the contract's status and body.
func (inv *invocation) httpResult(res result) httpResponse {
	status := res.outcome.HTTPStatus()
	if res.job != nil {
		switch {
		case res.outcome.Success():
			resp := jsonResponse(status, res.job)
			if status == http.StatusAccepted {
				resp.headers["Location"] = jobLocation + res.job.JobID
			}
			return resp
		case res.outcome == outcome.Timeout && res.resumable:
			// The job made progress and stopped at the deadline: accepted, not done.
			resp := jsonResponse(http.StatusAccepted, res.job)
			resp.headers["Location"] = jobLocation + res.job.JobID
			return resp
		case res.outcome == outcome.UpstreamError:
			// A partial failure: the job's own body says which conversations
			// failed. It holds counts and ConvIds only, never a message text.
			return jsonResponse(status, res.job)
		}
	}
	if res.outcome.Success() {
		return jsonResponse(status, outcome.NewSuccessBody(res.outcome, res.resp))
	}
	d := outcome.ErrorDetail{Code: res.outcome.ErrorType(), Message: outcome.Describe(res.err)}
	if status >= http.StatusInternalServerError {
		// The caller may be an end user (JWT mode) and cannot act on the
		// details (the secret's name, AWS SDK text, ZEGO's wording): they go
		// to the log only.
		d.Message = serverErrorMessage(res.outcome)
	}
	if res.outcome == outcome.InvalidRequest {
		d.Field = outcome.ErrorField(res.err)
	}
	var ae *zim.APIError
	if errors.As(res.err, &ae) {
		d.ZegoCode, d.RequestID = ae.Code, ae.RequestID
	}
	resp := jsonResponse(status, outcome.ErrorBody{Error: d})
	switch res.outcome {
	case outcome.Throttled:
		resp.headers["Retry-After"] = "1"
	case outcome.Unavailable:
		resp.headers["Retry-After"] = "5"
	}
	return resp
}

// serverErrorMessage is the whole message of a 5xx body: one fixed text per
// outcome, so that nothing of the failure's details can reach it.
func serverErrorMessage(o outcome.Outcome) string {
	switch o {
	case outcome.UpstreamError:
		return "ZEGO answered with an error; zegoCode and requestId identify it where ZEGO gave them, and the operator will find the details in the function's logs"
	case outcome.Timeout:
		return "no answer from ZEGO before the function's deadline; the deletion may or may not have happened: retry (deleting is idempotent)"
	case outcome.Unavailable:
		return "a service the function depends on is unavailable for now; retry after the Retry-After delay (deleting is idempotent)"
	case outcome.ConfigurationError:
		return "the function is not configured correctly; the operator will find the details in its logs"
	}
	return "internal error; the operator will find the details in the function's logs"
}

// httpError answers a request that never reached the request rules (route,
// method, size) and logs it like any other outcome.
func (inv *invocation) httpError(r httpRequest, status int, code, msg string) httpResponse {
	inv.h.log.Warn("request outcome", "requestId", inv.requestID, "trigger", r.trigger, "outcome", outcome.InvalidRequest,
		"httpStatus", status, "error", msg)
	inv.count(outcome.InvalidRequest, nil)
	return jsonResponse(status, outcome.ErrorBody{Error: outcome.ErrorDetail{Code: code, Message: msg}})
}

func jsonResponse(status int, v any) httpResponse {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs are passed here
		panic(err)
	}
	return httpResponse{status: status, headers: map[string]string{"Content-Type": "application/json"}, body: b}
}
