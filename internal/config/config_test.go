package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"ZEGO_SECRET_ID": "zim/zego"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{SecretID: "zim/zego", APIURL: zim.DefaultBaseURL, RateLimit: 20, SecretTTL: 5 * time.Minute, LogLevel: slog.LevelInfo,
		BackoffBase: time.Minute, BackoffMax: time.Hour}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

func TestLoadAll(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"ZEGO_SECRET_ID":    "arn:aws:secretsmanager:us-east-1:123456789012:secret:zim-AbCdEf",
		"ZEGO_API_URL":      "https://zim-api-fra.zego.im",
		"ZEGO_RATE_LIMIT":   "10",
		"ZEGO_SECRET_TTL":   "90s",
		"LOG_LEVEL":         "DEBUG",
		"ZEGO_CALLER_CLAIM": "sub",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIURL != "https://zim-api-fra.zego.im" || c.RateLimit != 10 || c.SecretTTL != 90*time.Second ||
		c.LogLevel != slog.LevelDebug || c.CallerClaim != "sub" {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, variable, value string
		rule                  string
	}{
		{"secret id missing", "ZEGO_SECRET_ID", "", "is required"},
		{"plain http to a remote host", "ZEGO_API_URL", "http://zim-api.zego.im", "ZEGO_API_URL is invalid"},
		{"url not a url", "ZEGO_API_URL", "zim-api.zego.im", "ZEGO_API_URL is invalid"},
		{"rate not a number", "ZEGO_RATE_LIMIT", "fast", "must be a number"},
		{"rate zero", "ZEGO_RATE_LIMIT", "0", "greater than 0 and at most 20"},
		{"rate over ZEGO's limit", "ZEGO_RATE_LIMIT", "21", "greater than 0 and at most 20"},
		// strconv.ParseFloat accepts these; NaN passes every ordered comparison.
		{"rate NaN", "ZEGO_RATE_LIMIT", "NaN", "greater than 0 and at most 20"},
		{"rate infinite", "ZEGO_RATE_LIMIT", "+Inf", "greater than 0 and at most 20"},
		{"ttl not a duration", "ZEGO_SECRET_TTL", "5", "must be a Go duration"},
		{"ttl negative", "ZEGO_SECRET_TTL", "-1m", "must be positive"},
		{"log level", "LOG_LEVEL", "verbose", "must be one of debug, info, warn, error"},
		{"queue name, not its URL", "ZEGO_JOB_QUEUE_URL", "zim-deleteconv", "not an absolute URL"},
		{"queue ARN, not its URL", "ZEGO_JOB_QUEUE_URL", "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv", "not an absolute URL"},
		{"queue over plain http", "ZEGO_JOB_QUEUE_URL", "http://sqs.us-east-1.amazonaws.com/123456789012/q", "https"},
		{"queue other scheme", "ZEGO_JOB_QUEUE_URL", "ftp://sqs.us-east-1.amazonaws.com/123456789012/q", "https"},
		{"queue without account", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/q", "12-digit account"},
		{"queue short account", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/12345/q", "12-digit account"},
		{"queue extra path", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/q/x", "queue name"},
		{"queue bad name", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/a.b", "queue name"},
		{"queue name too long", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/" + strings.Repeat("q", 81), "queue name"},
		{"queue only .fifo", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/.fifo", "queue name"},
		{"queue with query", "ZEGO_JOB_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/q?x=1", "query"},
		{"queue with user info", "ZEGO_JOB_QUEUE_URL", "https://u:p@sqs.us-east-1.amazonaws.com/123456789012/q", "user info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{"ZEGO_SECRET_ID": "zim/zego"}
			m[tt.variable] = tt.value
			_, err := Load(env(m))
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tt.variable {
				t.Fatalf("err = %v, want a *config.Error for %s", err, tt.variable)
			}
			if !strings.Contains(err.Error(), tt.rule) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.rule)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"ZEGO_RATE_LIMIT": "x", "LOG_LEVEL": "loud"}))
	for _, v := range []string{"ZEGO_SECRET_ID", "ZEGO_RATE_LIMIT", "LOG_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Fatalf("err = %v, want it to name %s", err, v)
		}
	}
}

func TestLoadJobQueueURL(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv",
		"https://sqs.eu-central-1.amazonaws.com/123456789012/zim-deleteconv.fifo",
		"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q_1",
		"http://127.0.0.1:40123/123456789012/zim-deleteconv", // moto
		"http://localhost:5000/123456789012/" + strings.Repeat("q", 75) + ".fifo",
	} {
		c, err := Load(env(map[string]string{"ZEGO_SECRET_ID": "s", "ZEGO_JOB_QUEUE_URL": " " + v + " "}))
		if err != nil || c.JobQueueURL != v {
			t.Errorf("%s: got %q, %v", v, c.JobQueueURL, err)
		}
	}
	if c, err := Load(env(map[string]string{"ZEGO_SECRET_ID": "s"})); err != nil || c.JobQueueURL != "" {
		t.Errorf("unset: got %q, %v; want off", c.JobQueueURL, err)
	}
}

func TestLoadLoopbackHTTPAllowed(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"ZEGO_SECRET_ID": "s", "ZEGO_API_URL": "http://127.0.0.1:8080"}))
	if err != nil || c.APIURL != "http://127.0.0.1:8080" {
		t.Fatalf("got %+v, %v", c, err)
	}
}
