package zimtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// maxLoggedRequests bounds the request log of a long-running server; the
// oldest entries go first.
const maxLoggedRequests = 100_000

// Request is one API request as the server saw it, and what it answered.
// It holds no secret and no signature: only whether the signature was valid.
type Request struct {
	Time             time.Time    `json:"Time"`   // arrival, by the server's clock
	Method           string       `json:"Method"` // HTTP method
	Action           string       `json:"Action"`
	AppID            uint32       `json:"AppId"` // 0 when missing or malformed
	Nonce            string       `json:"Nonce"`
	Timestamp        int64        `json:"Timestamp"` // 0 when missing or malformed
	SignatureVersion string       `json:"SignatureVersion"`
	SignatureValid   bool         `json:"SignatureValid"` // the signature matches the app's current secret
	FromUserID       string       `json:"FromUserId"`     // from the body, when it has one
	ConvID           string       `json:"ConvId"`         // from the body, when it has one
	ConvType         zim.ConvType `json:"ConvType"`       // from the body, when it has one
	Body             []byte       `json:"Body"`           // the raw body (base64 in JSON)
	Code             int          `json:"Code"`           // the answered Code; 0 also when no envelope was sent
	RequestID        string       `json:"RequestId"`      // the answered RequestId; empty when no envelope was sent
	HTTPStatus       int          `json:"HTTPStatus"`     // 0 when the connection was dropped or the client left
	Fault            string       `json:"Fault"`          // the fault that answered or delayed it; "" if none
}

// String describes the request in one line, for test failure messages.
func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s AppId=%d", r.Method, r.Action, r.AppID)
	if r.FromUserID != "" || r.ConvID != "" {
		fmt.Fprintf(&b, " FromUserId=%q ConvId=%q ConvType=%d", r.FromUserID, r.ConvID, r.ConvType)
	}
	fmt.Fprintf(&b, " signature valid=%t: HTTP %d Code %d RequestId=%q", r.SignatureValid, r.HTTPStatus, r.Code, r.RequestID)
	if r.Fault != "" {
		fmt.Fprintf(&b, " fault %q", r.Fault)
	}
	return b.String()
}

// logEntry is a slot in the log, reserved on arrival and filled on answer, so
// the log is in arrival order even when answers are delayed.
type logEntry struct {
	req  Request
	done bool
}

// arrive reserves a log slot for a request that has just arrived.
func (s *Server) arrive(req Request) *logEntry {
	e := &logEntry{req: req}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, e)
	if n := len(s.log) - maxLoggedRequests; n > 0 {
		s.log = append(s.log[:0:0], s.log[n:]...)
	}
	return e
}

// finish stores the final record of a request.
func (s *Server) finish(e *logEntry, req Request) {
	s.mu.Lock()
	e.req, e.done = req, true
	s.mu.Unlock()
	s.logger.Info("zim request",
		"method", req.Method, "action", req.Action, "app_id", req.AppID,
		"from_user_id", req.FromUserID, "conv_id", req.ConvID, "conv_type", int(req.ConvType),
		"signature_valid", req.SignatureValid, "http_status", req.HTTPStatus,
		"code", req.Code, "request_id", req.RequestID, "fault", req.Fault)
}

// Requests returns the API requests answered so far (admin calls excluded), in
// arrival order. A request appears once it has been answered, dropped or
// abandoned by its client. The log keeps the latest 100,000 requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.log))
	for _, e := range s.log {
		if e.done {
			r := e.req
			r.Body = append([]byte(nil), e.req.Body...)
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests empties the request log. Requests still being answered stay,
// and appear when they are done.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.log[:0:0]
	for _, e := range s.log {
		if !e.done {
			kept = append(kept, e)
		}
	}
	s.log = kept
}
