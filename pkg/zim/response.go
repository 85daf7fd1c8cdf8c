package zim

import (
	"encoding/json"
	"unicode/utf8"
)

// maxSnippetBytes bounds ResponseError.Snippet, enough to recognise an HTML
// error page or a proxy's message in a log line.
const maxSnippetBytes = 256

// maxMessageBytes bounds ZEGO's Message as the client passes it on (in
// Response, APIError and the log lines): ZEGO's own are a few words, and
// whatever a proxy or a faulty server sends must not grow callers' logs and
// answers without bound.
const maxMessageBytes = 256

// envelope is the part every ZEGO answer carries.
type envelope struct {
	Code      int
	Message   string
	RequestID string
}

// decodeResponse reads ZEGO's Code/Message/RequestId envelope from an answer's
// body. Anything else, including JSON without a numeric Code, is a
// *ResponseError that keeps the HTTP status and the start of the body; the
// caller fills in its Action. The HTTP status does not decide success: ZEGO's
// Code does.
func decodeResponse(status int, body []byte) (envelope, *ResponseError) {
	var wire struct {
		Code      *int   `json:"Code"`
		Message   string `json:"Message"`
		RequestID string `json:"RequestId"`
	}
	if err := json.Unmarshal(body, &wire); err != nil || wire.Code == nil {
		return envelope{}, &ResponseError{HTTPStatus: status, Snippet: snippet(body)}
	}
	return envelope{Code: *wire.Code, Message: prefix(wire.Message, maxMessageBytes), RequestID: wire.RequestID}, nil
}

// snippet returns at most maxSnippetBytes from the start of body, cut at a rune
// boundary so that logs stay valid UTF-8 where the body was.
func snippet(body []byte) string {
	return prefix(string(body[:min(len(body), maxSnippetBytes+1)]), maxSnippetBytes)
}

// prefix returns at most n bytes from the start of s, cut at a rune boundary
// so that what was valid UTF-8 stays so.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n // not UTF-8 at all: cut anywhere
	}
	return s[:cut]
}
