package handler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestZegoMessageIsBounded: ZEGO's Message text, however long it comes, is
// cut short in the answers (success body, error object, function error) and
// in the log lines, where each caller would otherwise get it whole.
func TestZegoMessageIsBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 20_000) // 40,000 bytes
	tooLong := strings.Repeat("é", 129) // more than 256 bytes of it
	for _, tc := range []struct {
		name, trigger string
		code          int
	}{
		{"deleted, HTTP API", "http_api", 0},
		{"refused, HTTP API", "http_api", 660000002},
		{"refused, direct", "direct", 660000002},
		{"failed upstream, direct", "direct", 660000099},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := newHarness(t)
			body, _ := json.Marshal(map[string]any{"Code": tc.code, "Message": long, "RequestId": "zego-req-1"})
			hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", Body: string(body)})
			var answer string
			if tc.trigger == "direct" {
				out, err := hs.invoke([]byte(`{"FromUserId":"alice","ConvId":"bob","ConvType":0}`), 5*time.Second)
				answer = string(out)
				if err != nil {
					answer += err.Error()
				}
			} else {
				a := hs.invokeHTTP(tc.trigger, httpEvent{method: "POST", path: "/conversations/delete", body: body0("alice", "bob")})
				b, _ := json.Marshal(a.body)
				answer = string(b)
			}
			if !strings.Contains(answer, "éé") {
				t.Fatalf("the answer does not show ZEGO's message at all: %.300s", answer)
			}
			if strings.Contains(answer, tooLong) {
				t.Errorf("the answer holds %d bytes", len(answer))
			}
			for _, line := range strings.Split(hs.logs.String(), "\n") {
				if strings.Contains(line, tooLong) {
					t.Errorf("a log line holds %d bytes: %.200s…", len(line), line)
				}
			}
		})
	}
}

func body0(from, conv string) string {
	return `{"FromUserId":"` + from + `","ConvId":"` + conv + `","ConvType":0}`
}
