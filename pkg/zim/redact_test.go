package zim

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	creds := Credentials{AppID: testAppID, ServerSecret: testSecret}
	c, err := New(testCreds)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("creds", "creds", creds, "static", StaticCredentials(creds))
	tests := []struct {
		name, got, want string
	}{
		{"%v", fmt.Sprintf("%v", creds), "{1234567890 [redacted]}"},
		{"%+v", fmt.Sprintf("%+v", creds), "{AppID:1234567890 ServerSecret:[redacted]}"},
		{"%#v", fmt.Sprintf("%#v", creds), `zim.Credentials{AppID:0x499602d2, ServerSecret:"[redacted]"}`},
		{"%s", fmt.Sprintf("%s", creds), "{1234567890 [redacted]}"},
		{"nested", fmt.Sprintf("%+v", struct{ C Credentials }{creds}), "{C:{AppID:1234567890 ServerSecret:[redacted]}}"},
		{"static", fmt.Sprintf("%v", StaticCredentials(creds)), "{1234567890 [redacted]}"},
		{"client", fmt.Sprintf("%v %+v", c, c), "zim.Client(https://zim-api.zego.im/) zim.Client(https://zim-api.zego.im/)"},
		{"slog", fmt.Sprint(strings.Contains(logs.String(), `"AppId":1234567890`)), "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(tt.got, testSecret) || strings.Contains(logs.String(), testSecret) || tt.got != tt.want {
				t.Errorf("printed %q, want %q", tt.got, tt.want)
			}
		})
	}
}
