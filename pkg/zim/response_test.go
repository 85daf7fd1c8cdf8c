package zim

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    envelope
		wantErr bool
	}{
		{"success", `{"Code":0,"Message":"success","RequestId":"343649807833778782"}`, envelope{0, "success", "343649807833778782"}, false},
		{"extra fields", `{"Code":660800002,"Message":"conversation not exist","RequestId":"1","Data":{}}`, envelope{660800002, "conversation not exist", "1"}, false},
		{"only Code", `{"Code":1}`, envelope{Code: 1}, false},
		{"whitespace around", " \n{\"Code\":0}\n", envelope{}, false},
		{"null Message", `{"Code":0,"Message":null}`, envelope{}, false},
		{"no Code", `{"Message":"success"}`, envelope{}, true},
		{"null Code", `{"Code":null}`, envelope{}, true},
		{"fractional Code", `{"Code":1.5}`, envelope{}, true},
		{"string Code", `{"Code":"0"}`, envelope{}, true},
		{"numeric RequestId", `{"Code":0,"RequestId":12}`, envelope{}, true},
		{"trailing data", `{"Code":0}{"Code":1}`, envelope{}, true},
		{"empty", ``, envelope{}, true},
		{"null", `null`, envelope{}, true},
		{"HTML", `<html><body>502 Bad Gateway</body></html>`, envelope{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeResponse(502, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if err.HTTPStatus != 502 || err.Snippet != tt.body {
					t.Errorf("ResponseError = %+v", err)
				}
				return
			}
			if got != tt.want {
				t.Errorf("envelope = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"short", "abc", "abc"},
		{"exactly 256", strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{"cut at 256", strings.Repeat("a", 300), strings.Repeat("a", 256)},
		// 255 ASCII bytes then a 3-byte rune across the cut: the rune is left out whole.
		{"rune boundary", strings.Repeat("a", 255) + "世界", strings.Repeat("a", 255)},
		{"not UTF-8", strings.Repeat("\x80", 300), strings.Repeat("\x80", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := snippet([]byte(tt.body)); got != tt.want {
				t.Errorf("snippet = %q (%d bytes), want %d bytes", got, len(got), len(tt.want))
			}
		})
	}
}

// FuzzDecodeResponse: whatever the body, the decoder either returns an envelope
// that a JSON object with a numeric Code produced, or a *ResponseError that keeps
// the status and a bounded prefix of the body. It never panics.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(200, []byte(`{"Code":0,"Message":"success","RequestId":"343649807833778782"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		env, err := decodeResponse(status, body)
		if err != nil {
			if err.HTTPStatus != status {
				t.Errorf("HTTPStatus = %d, want %d", err.HTTPStatus, status)
			}
			if len(err.Snippet) > maxSnippetBytes || !strings.HasPrefix(string(body), err.Snippet) {
				t.Errorf("snippet %q is not a prefix of at most %d bytes", err.Snippet, maxSnippetBytes)
			}
			if len(body) > maxSnippetBytes && len(err.Snippet) < maxSnippetBytes-utf8.UTFMax {
				t.Errorf("snippet of %d bytes from a %d-byte body", len(err.Snippet), len(body))
			}
			if utf8.Valid(body) && !utf8.ValidString(err.Snippet) {
				t.Errorf("snippet %q of a UTF-8 body is not UTF-8", err.Snippet)
			}
			return
		}
		var check struct {
			Code json.Number
		}
		if jerr := json.Unmarshal(body, &check); jerr != nil || check.Code.String() == "" {
			t.Fatalf("accepted %q, which has no numeric Code: %v", body, jerr)
		}
		if n, _ := check.Code.Int64(); int(n) != env.Code {
			t.Errorf("Code = %d, body says %s", env.Code, check.Code)
		}
	})
}
