package zim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLongMessageIsBounded: ZEGO's Message is outside input that the client
// passes on in Response, APIError and its log lines, and callers put into
// their answers and logs: however long it comes, what goes on is a valid UTF-8
// prefix of at most maxMessageBytes.
func TestLongMessageIsBounded(t *testing.T) {
	t.Parallel()
	// "é" is 2 bytes: at an odd offset, a byte cut would split it.
	long := "x" + strings.Repeat("é", 40_000)
	envelope := func(code int) answer {
		b, _ := json.Marshal(map[string]any{"Code": code, "Message": long, "RequestId": "req-long"})
		return answer{body: string(b)}
	}
	for _, tt := range []struct {
		name string
		code int
	}{
		{"success", 0},
		{"refused", 660000002},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, serve(t, newFake(envelope(tt.code))))
			resp, err := c.DeleteConversation(t.Context(), testReq)
			if resp == nil || resp.Code != tt.code {
				t.Fatalf("resp = %+v, err = %v", resp, err)
			}
			texts := map[string]string{"Response.Message": resp.Message}
			if tt.code != 0 {
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want an *APIError", err)
				}
				texts["APIError.Message"] = ae.Message
				if n := len(err.Error()); n > maxMessageBytes+200 {
					t.Errorf("error text is %d bytes", n)
				}
			}
			for what, s := range texts {
				if len(s) > maxMessageBytes || len(s) < maxMessageBytes-utf8.UTFMax || !utf8.ValidString(s) || !strings.HasPrefix(long, s) {
					t.Errorf("%s: %d bytes, valid UTF-8 %v, prefix %v; want a valid prefix of at most %d bytes",
						what, len(s), utf8.ValidString(s), strings.HasPrefix(long, s), maxMessageBytes)
				}
			}
		})
	}
}
