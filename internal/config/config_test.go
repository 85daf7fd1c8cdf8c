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
	want := Config{SecretID: "zim/zego", APIURL: zim.DefaultBaseURL, RateLimit: 20, SecretTTL: 5 * time.Minute, LogLevel: slog.LevelInfo, RateBudget: 20,
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

// TestLoadBudget: the shared budget's settings, as the template sets them on
// each function, and every way they can be wrong, named by variable.
func TestLoadBudget(t *testing.T) {
	t.Parallel()
	type budget struct {
		table                   string
		rate, floor, floorTotal int
	}
	tests := []struct {
		name     string
		env      map[string]string
		want     budget
		variable string // the variable the error names; "" = no error
		rule     string
	}{
		{name: "unset: no table, the whole of ZEGO's rate, no floor", want: budget{rate: 20}},
		{name: "ApiFunction", env: map[string]string{"ZEGO_STATE_TABLE": "zim-deleteconv-StateTable-1ABC", "ZEGO_RATE_BUDGET": "20", "ZEGO_RATE_FLOOR": "1", "ZEGO_RATE_FLOOR_TOTAL": "2"},
			want: budget{"zim-deleteconv-StateTable-1ABC", 20, 1, 2}},
		{name: "QueueFunction", env: map[string]string{"ZEGO_STATE_TABLE": "state", "ZEGO_RATE_BUDGET": " 6 ", "ZEGO_RATE_FLOOR": "0", "ZEGO_RATE_FLOOR_TOTAL": "5"},
			want: budget{"state", 6, 0, 5}},
		{name: "table ARN", env: map[string]string{"ZEGO_STATE_TABLE": "arn:aws:dynamodb:us-east-1:123456789012:table/state.v1_x-y"},
			want: budget{"arn:aws:dynamodb:us-east-1:123456789012:table/state.v1_x-y", 20, 0, 0}},
		{name: "smallest pool", env: map[string]string{"ZEGO_RATE_BUDGET": "2", "ZEGO_RATE_FLOOR": "1", "ZEGO_RATE_FLOOR_TOTAL": "1"}, want: budget{"", 2, 1, 1}},

		{name: "table name too short", env: map[string]string{"ZEGO_STATE_TABLE": "ab"}, variable: "ZEGO_STATE_TABLE", rule: "3 to 255"},
		{name: "table name with a slash", env: map[string]string{"ZEGO_STATE_TABLE": "a/b/c"}, variable: "ZEGO_STATE_TABLE", rule: "3 to 255"},
		{name: "table ARN of another service", env: map[string]string{"ZEGO_STATE_TABLE": "arn:aws:sqs:us-east-1:123456789012:q"}, variable: "ZEGO_STATE_TABLE", rule: "table/<name>"},
		{name: "budget not a number", env: map[string]string{"ZEGO_RATE_BUDGET": "lots"}, variable: "ZEGO_RATE_BUDGET", rule: "whole number"},
		{name: "budget a fraction", env: map[string]string{"ZEGO_RATE_BUDGET": "6.5"}, variable: "ZEGO_RATE_BUDGET", rule: "whole number"},
		{name: "budget zero", env: map[string]string{"ZEGO_RATE_BUDGET": "0"}, variable: "ZEGO_RATE_BUDGET", rule: "1 to 20"},
		{name: "budget over ZEGO's limit", env: map[string]string{"ZEGO_RATE_BUDGET": "21"}, variable: "ZEGO_RATE_BUDGET", rule: "1 to 20"},
		{name: "floor 2", env: map[string]string{"ZEGO_RATE_FLOOR": "2", "ZEGO_RATE_FLOOR_TOTAL": "2"}, variable: "ZEGO_RATE_FLOOR", rule: "0 or 1"},
		{name: "floor a fraction", env: map[string]string{"ZEGO_RATE_FLOOR": "0.5"}, variable: "ZEGO_RATE_FLOOR", rule: "0 or 1"},
		{name: "floor total negative", env: map[string]string{"ZEGO_RATE_FLOOR_TOTAL": "-1"}, variable: "ZEGO_RATE_FLOOR_TOTAL", rule: "0 or more"},
		{name: "floor total leaves no pool", env: map[string]string{"ZEGO_RATE_BUDGET": "4", "ZEGO_RATE_FLOOR_TOTAL": "4"}, variable: "ZEGO_RATE_FLOOR_TOTAL", rule: "less than ZEGO_RATE_BUDGET (4)"},
		{name: "floor total over the default budget", env: map[string]string{"ZEGO_RATE_FLOOR_TOTAL": "25"}, variable: "ZEGO_RATE_FLOOR_TOTAL", rule: "less than ZEGO_RATE_BUDGET (20)"},
		{name: "floor not counted in the total", env: map[string]string{"ZEGO_RATE_FLOOR": "1"}, variable: "ZEGO_RATE_FLOOR_TOTAL", rule: "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{"ZEGO_SECRET_ID": "zim/zego"}
			for k, v := range tt.env {
				m[k] = v
			}
			c, err := Load(env(m))
			if tt.variable == "" {
				got := budget{c.StateTable, c.RateBudget, c.RateFloor, c.RateFloorTotal}
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tt.variable || !strings.Contains(err.Error(), tt.rule) {
				t.Fatalf("err = %v, want a *config.Error for %s saying %q", err, tt.variable, tt.rule)
			}
			if v := m[tt.variable]; strings.HasPrefix(v, "arn:") && strings.Contains(err.Error(), v) {
				t.Errorf("err = %v quotes the ARN", err)
			}
		})
	}
}
