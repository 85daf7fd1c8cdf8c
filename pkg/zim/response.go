package zim

import (
	"encoding/json"
	"unicode/utf8"
)

// maxSnippetBytes bounds ResponseError.Snippet, enough to recognise an HTML
// error page or a proxy's message in a log line.
const maxSnippetBytes = 256

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
	return envelope{Code: *wire.Code, Message: wire.Message, RequestID: wire.RequestID}, nil
}

// snippet returns at most maxSnippetBytes from the start of body, cut at a rune
// boundary so that logs stay valid UTF-8 where the body was.
func snippet(body []byte) string {
	if len(body) <= maxSnippetBytes {
		return string(body)
	}
	cut := maxSnippetBytes
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(body[cut]); i++ {
		cut--
	}
	if !utf8.RuneStart(body[cut]) {
		cut = maxSnippetBytes // not UTF-8 at all: cut anywhere
	}
	return string(body[:cut])
}
