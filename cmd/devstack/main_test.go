package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These cover what the command decides before starting anything; e2e/ runs
// the demo and invoke commands against the real stack.
func TestRunRefusesBadUsage(t *testing.T) {
	emptyDir := t.TempDir()
	for _, tc := range []struct {
		name     string
		args     []string
		target   string
		wantCode int
		wantErr  string
	}{
		{"no command", nil, "", 2, "usage:"},
		{"unknown command", []string{"deploy"}, "", 2, `unknown command "deploy"`},
		{"invoke without an event", []string{"invoke"}, "", 2, "-event"},
		{"invoke with a missing file", []string{"invoke", "-event", "no/such.json"}, "", 1, "no such file"},
		{"unknown target", []string{"invoke", "-event", "../../events/direct.json"}, "cloud", 2, `ZEGO_TARGET="cloud"`},
		{"aws target without a secret id", []string{"invoke", "-event", "../../events/direct.json"}, "aws", 1, "needs ZEGO_SECRET_ID"},
		{"demo against aws", []string{"demo"}, "aws", 2, "local stack only"},
		{"demo without samples", []string{"demo", "-events", emptyDir}, "", 1, "no sample events"},
		{"demo with a negative job", []string{"demo", "-job", "-1"}, "", 2, "-job"},
		{"invoke with an unknown target", []string{"invoke", "-event", "../../events/direct.json", "-target", "lambda"}, "", 2, "-target"},
		{"queue target against aws", []string{"invoke", "-event", "../../events/direct.json", "-target", "queue"}, "aws", 2, "local queue only"},
		{"stack against aws", []string{"stack"}, "aws", 2, "local stack only"},
		{"unknown latency profile", []string{"stack", "-latency", "mars"}, "", 2, `-latency "mars": want off or default`},
		{"latency against aws", []string{"invoke", "-event", "../../events/direct.json", "-latency", "default"}, "aws", 2, "-latency applies to the local stack only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("ZEGO_TARGET", tc.target)
			t.Setenv("ZEGO_SECRET_ID", "")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.wantCode, tc.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "devstack demo") {
		t.Errorf("help: %d, %q", code, stdout.String())
	}
}

// The local stack runs with the template's timeouts and redrive, so that what
// the demo shows (a job's rounds, its rate) is what a deployed stack does.
func TestTemplateConfigFollowsTheTemplate(t *testing.T) {
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := string(b)
	// value returns the first "key: N" line after the line that opens block.
	value := func(block, key string) int {
		t.Helper()
		i := strings.Index(tmpl, "\n"+block+"\n")
		if i < 0 {
			t.Fatalf("template.yaml has no %q", block)
		}
		m := regexp.MustCompile(`(?m)^\s+` + key + `: (\d+)$`).FindStringSubmatch(tmpl[i:])
		if m == nil {
			t.Fatalf("template.yaml: no %s under %q", key, block)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	cfg := templateConfig()
	for _, c := range []struct {
		what string
		got  time.Duration
		want int
	}{
		{"ApiFunction Timeout", cfg.Function.Timeout, value("  ApiFunction:", "Timeout")},
		{"QueueFunction Timeout", cfg.Queue.Function.Timeout, value("  QueueFunction:", "Timeout")},
		{"Queue VisibilityTimeout", cfg.Queue.VisibilityTimeout, value("  Queue:", "VisibilityTimeout")},
	} {
		if c.got != time.Duration(c.want)*time.Second {
			t.Errorf("%s: local stack %v, template %d s", c.what, c.got, c.want)
		}
	}
	if want := value("  MaxReceiveCount:", "Default"); cfg.Queue.MaxReceiveCount != want {
		t.Errorf("MaxReceiveCount: local stack %d, template default %d", cfg.Queue.MaxReceiveCount, want)
	}
}
