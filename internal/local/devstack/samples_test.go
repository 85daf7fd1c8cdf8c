package devstack_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

func TestCheckRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body    string
		wantErr string // "" for a valid request
	}{
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": 0}`, ""},
		{`{"FromUserId": "alice", "ConvId": "#team-7", "ConvType": 2}`, ""},
		{`{"ConvType": 2, "ConvId": "a@b&c", "FromUserId": "alice"}`, ""},
		{`{"FromUserId": "alice", "AllConversations": true}`, ""},
		{` {"FromUserId": "alice", "ConvId": "bob", "ConvType": 0} ` + "\n", ""},
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": 1}`, "ConvType"},
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": 2.0}`, "ConvType"},
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": "0"}`, "ConvType"},
		{`{"FromUserId": "alice", "ConvId": "bob"}`, "ConvType is missing"},
		{`{"FromUserId": "alice", "ConvType": 0}`, "ConvId is missing"},
		{`{"FromUserId": "", "ConvId": "bob", "ConvType": 0}`, "FromUserId"},
		{`{"FromUserId": "alice", "ConvId": "` + strings.Repeat("x", 33) + `", "ConvType": 0}`, "ConvId"},
		{`{"FromUserId": "al\u0007ice", "ConvId": "bob", "ConvType": 0}`, "FromUserId"},
		{`{"FromUserId": 7, "ConvId": "bob", "ConvType": 0}`, "FromUserId must be a string"},
		{`{"fromUserId": "alice", "ConvId": "bob", "ConvType": 0}`, "FromUserId is missing"},
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": 0, "Extra": 1}`, "Extra is not a known field"},
		{`{"FromUserId": "alice", "FromUserId": "bob", "ConvId": "bob", "ConvType": 0}`, "repeated"},
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": 0}{}`, "trailing"},
		{`{"FromUserId": "alice", "AllConversations": false}`, "must be true"},
		{`{"FromUserId": "alice", "AllConversations": true, "ConvId": "bob"}`, "cannot be combined"},
		{`[]`, "JSON object"},
		{`{"FromUserId": "alice", "ConvId": "bob", "ConvType": 0`, "not valid JSON"},
	} {
		err := devstack.CheckRequest([]byte(tc.body))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckRequest(%s) = %v, want valid", tc.body, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckRequest(%s) = %v, want an error containing %q", tc.body, err, tc.wantErr)
		}
	}
}

func TestSamplesOrderAndTriggers(t *testing.T) {
	t.Parallel()
	root, err := devstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"direct.json", "apigw-http.json", "apigw-rest.json", "sqs.json"} {
		b, err := os.ReadFile(filepath.Join(root, "events", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"b-extra.json": `{"hello": 1}`, "a-extra.json": `{"FromUserId": "x", "AllConversations": true}`, "notes.txt": "ignored"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	samples, err := devstack.Samples(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range samples {
		got = append(got, filepath.Base(s.Path)+":"+string(s.Trigger))
	}
	want := []string{"direct.json:direct", "apigw-http.json:HTTP API", "apigw-rest.json:REST API", "sqs.json:SQS", "a-extra.json:direct", "b-extra.json:direct"}
	if !slices.Equal(got, want) {
		t.Errorf("Samples = %q, want %q", got, want)
	}

	if _, err := devstack.Samples(t.TempDir()); err == nil {
		t.Error("Samples of an empty folder: no error")
	}
	if got := devstack.DetectTrigger([]byte(`"text"`)); got != devstack.TriggerUnknown {
		t.Errorf("DetectTrigger(a string) = %s, want unknown", got)
	}
}
