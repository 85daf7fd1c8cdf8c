package zimtest

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// API actions the server implements.
const (
	actionDeleteConv            = "DeleteConv"
	actionQueryConversationList = "QueryConversationList"
)

const (
	// maxBodyBytes bounds a request body; a longer one answers 100000012.
	maxBodyBytes = 1 << 20
	// maxClockSkew is how far Timestamp may be from the server's clock.
	maxClockSkew = 10 * time.Minute
)

// envelope is the part of every answer ZEGO sends.
type envelope struct {
	Code      int    `json:"Code"`
	Message   string `json:"Message"`
	RequestID string `json:"RequestId"`
}

// listAnswer is QueryConversationList's answer.
type listAnswer struct {
	envelope
	TotalCount int        `json:"TotalCount"`
	Next       int64      `json:"Next"`
	List       []listItem `json:"List"`
}

// listItem omits ConvType for one-on-one conversations, as ZEGO's own example
// does ("0 or absent: one-on-one"), so clients are tested on both forms.
type listItem struct {
	ConvID     string       `json:"ConvId"`
	ConvType   zim.ConvType `json:"ConvType,omitempty"`
	UpdateTime int64        `json:"UpdateTime"`
}

// exchange is one API request being served.
type exchange struct {
	w     http.ResponseWriter
	r     *http.Request
	q     url.Values
	req   Request
	entry *logEntry
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	x := &exchange{w: w, r: r, q: q, req: Request{
		Time:             s.now(),
		Method:           r.Method,
		Action:           q.Get("Action"),
		Nonce:            q.Get("SignatureNonce"),
		SignatureVersion: q.Get("SignatureVersion"),
	}}
	if id, err := strconv.ParseUint(q.Get("AppId"), 10, 32); err == nil {
		x.req.AppID = uint32(id)
	}
	if ts, err := strconv.ParseInt(q.Get("Timestamp"), 10, 64); err == nil {
		x.req.Timestamp = ts
	}
	x.entry = s.arrive(x.req)

	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	x.req.Body = body
	x.req.FromUserID, x.req.ConvID, x.req.ConvType = peek(body)
	x.req.SignatureValid = s.signatureValid(q)

	f, faulted := s.takeFault(x.req.Action, x.req.ConvID)
	if faulted {
		x.req.Fault = f.String()
		if f.Delay > 0 && !s.wait(r, f.Delay) {
			s.finish(x.entry, x.req) // the client left, or the server closed
			return
		}
		if f.answers() {
			now := s.now()
			if s.checkCommon(q, now) == codeSuccess {
				s.count(x.req.AppID, now)
			}
			s.serveFault(x, f)
			return
		}
	}

	now := s.now()
	if readErr != nil {
		s.reply(x, codeBodyUnreadable, "")
		return
	}
	if code := s.checkCommon(q, now); code != codeSuccess {
		s.reply(x, code, "")
		return
	}
	if !s.admit(x.req.AppID, now) {
		s.reply(x, codeAppIDRateLimited, "")
		return
	}
	switch x.req.Action {
	case actionDeleteConv:
		s.deleteConv(x, body)
	case actionQueryConversationList:
		s.queryConversationList(x, body)
	}
}

// checkCommon applies ZEGO's checks of the common query parameters, in the
// order documented in doc.go, and returns the code to answer (0 when all pass).
func (s *Server) checkCommon(q url.Values, now time.Time) int {
	appID, err := strconv.ParseUint(q.Get("AppId"), 10, 32)
	if err != nil || appID == 0 {
		return codeAppIDFormat
	}
	switch action := q.Get("Action"); {
	case action == "":
		return codeActionEmpty
	case action != actionDeleteConv && action != actionQueryConversationList:
		return codeActionUnsupported
	}
	tsText := q.Get("Timestamp")
	if tsText == "" {
		return codeTimestampEmpty
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return codeTimestampFormat
	}
	if !isNonce(q.Get("SignatureNonce")) {
		return codeNonceInvalid
	}
	switch v := q.Get("SignatureVersion"); {
	case v == "":
		return codeVersionEmpty
	case v != "2.0":
		return codeVersionUnsupported
	}
	if q.Get("Signature") == "" {
		return codeSignatureEmpty
	}
	if _, ok := s.secret(uint32(appID)); !ok {
		return codeNoAppConfig
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return codeSignatureExpired
	}
	if !s.signatureValid(q) {
		return codeSignatureInvalid
	}
	return codeSuccess
}

// signatureValid reports whether the query's Signature is
// md5(AppId + SignatureNonce + ServerSecret + Timestamp) in lowercase hex for
// the app's current secret, with AppId and Timestamp in canonical decimal.
func (s *Server) signatureValid(q url.Values) bool {
	appID, err := strconv.ParseUint(q.Get("AppId"), 10, 32)
	if err != nil {
		return false
	}
	ts, err := strconv.ParseInt(q.Get("Timestamp"), 10, 64)
	if err != nil {
		return false
	}
	secret, ok := s.secret(uint32(appID))
	if !ok {
		return false
	}
	want := signature(uint32(appID), q.Get("SignatureNonce"), secret, ts)
	return subtle.ConstantTimeCompare([]byte(want), []byte(q.Get("Signature"))) == 1
}

// signature computes a version 2.0 signature. It is this package's own code,
// independent of package zim, so a bug in the client's signing cannot hide.
func signature(appID uint32, nonce, secret string, ts int64) string {
	h := md5.New()
	_, _ = io.WriteString(h, strconv.FormatUint(uint64(appID), 10))
	_, _ = io.WriteString(h, nonce)
	_, _ = io.WriteString(h, secret)
	_, _ = io.WriteString(h, strconv.FormatInt(ts, 10))
	return hex.EncodeToString(h.Sum(nil))
}

// isNonce reports whether n is 16 lowercase hex characters (8 random bytes).
func isNonce(n string) bool {
	if len(n) != 16 {
		return false
	}
	for _, c := range []byte(n) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Server) deleteConv(x *exchange, body []byte) {
	dc, err := decodeDeleteConv(body)
	if err != nil {
		s.reply(x, codeInvalidParameter, err.Error())
		return
	}
	s.mu.Lock()
	deleted := s.store.delete(userKey{x.req.AppID, dc.FromUserID}, convKey{dc.ConvID, dc.ConvType})
	s.mu.Unlock()
	if !deleted {
		s.reply(x, s.missingCode, "")
		return
	}
	s.reply(x, codeSuccess, "")
}

func (s *Server) queryConversationList(x *exchange, body []byte) {
	lq, err := decodeListQuery(body)
	if err != nil {
		s.reply(x, codeInvalidParameter, err.Error())
		return
	}
	s.mu.Lock()
	all := s.store.sorted(userKey{x.req.AppID, lq.FromUserID})
	s.mu.Unlock()

	// The latest 1000, in ascending UpdateTime order as ZEGO documents.
	visible := all[:min(len(all), visibleConversations)]
	slices.Reverse(visible)
	a := listAnswer{TotalCount: len(all), List: []listItem{}}
	if lq.Next < int64(len(visible)) {
		end := min(int(lq.Next)+lq.Limit, len(visible))
		for _, c := range visible[lq.Next:end] {
			a.List = append(a.List, listItem{c.conv.ConvID, c.conv.ConvType, c.conv.UpdateTime})
		}
		if end < len(visible) {
			a.Next = int64(end)
		}
	}
	a.envelope = s.envelope(x, codeSuccess, "")
	s.write(x, http.StatusOK, a)
}

// reply answers the envelope alone, with HTTP 200.
func (s *Server) reply(x *exchange, code int, detail string) {
	s.write(x, http.StatusOK, s.envelope(x, code, detail))
}

// envelope builds an answer's envelope with a fresh RequestId and records it.
func (s *Server) envelope(x *exchange, code int, detail string) envelope {
	msg := messageFor(code)
	if detail != "" {
		msg += ": " + detail
	}
	e := envelope{Code: code, Message: msg, RequestID: newRequestID()}
	x.req.Code, x.req.RequestID = e.Code, e.RequestID
	return e
}

// write sends a JSON answer and completes the log entry.
func (s *Server) write(x *exchange, status int, v any) {
	x.req.HTTPStatus = status
	s.finish(x.entry, x.req)
	x.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	x.w.WriteHeader(status)
	_ = json.NewEncoder(x.w).Encode(v)
}

// serveFault answers as the fault says.
func (s *Server) serveFault(x *exchange, f Fault) {
	switch {
	case f.Drop:
		s.finish(x.entry, x.req)
		drop(x.w)
	case f.Body != "":
		s.writeText(x, orDefault(f.HTTPStatus, http.StatusOK), f.Body)
	case f.Code != 0:
		s.write(x, orDefault(f.HTTPStatus, http.StatusOK), s.envelope(x, f.Code, ""))
	default:
		s.writeText(x, f.HTTPStatus, strconv.Itoa(f.HTTPStatus)+" "+http.StatusText(f.HTTPStatus)+"\n")
	}
}

// writeText sends a plain-text answer (what a proxy in front of ZEGO sends).
func (s *Server) writeText(x *exchange, status int, body string) {
	x.req.HTTPStatus = status
	s.finish(x.entry, x.req)
	x.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	x.w.WriteHeader(status)
	_, _ = io.WriteString(x.w, body)
}

// newRequestID returns a fresh 18-digit decimal id, like ZEGO's.
func newRequestID() string {
	return strconv.FormatUint(100_000_000_000_000_000+rand.Uint64N(900_000_000_000_000_000), 10)
}
