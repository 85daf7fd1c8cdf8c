package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadRedelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		dlq       string
		base, max time.Duration
	}{
		{"defaults", nil, "", time.Minute, time.Hour},
		{"all set", map[string]string{
			"ZEGO_DEAD_LETTER_QUEUE_URL": " https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv-dlq ",
			"ZEGO_BACKOFF_BASE":          "2s",
			"ZEGO_BACKOFF_MAX":           "30s",
		}, "https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv-dlq", 2 * time.Second, 30 * time.Second},
		{"moto and FIFO", map[string]string{"ZEGO_DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:4566/123456789012/q-dlq.fifo"},
			"http://127.0.0.1:4566/123456789012/q-dlq.fifo", time.Minute, time.Hour},
		{"base equal to max", map[string]string{"ZEGO_BACKOFF_BASE": "1h"}, "", time.Hour, time.Hour},
		// The template cannot compare the two; the max wins in redelivery.Backoff.
		{"base over max", map[string]string{"ZEGO_BACKOFF_BASE": "2m", "ZEGO_BACKOFF_MAX": "1m"}, "", 2 * time.Minute, time.Minute},
		{"SQS's ceiling", map[string]string{"ZEGO_BACKOFF_MAX": "12h"}, "", time.Minute, 12 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{"ZEGO_SECRET_ID": "s"}
			for k, v := range tt.env {
				m[k] = v
			}
			c, err := Load(env(m))
			if err != nil {
				t.Fatal(err)
			}
			if c.DeadLetterQueueURL != tt.dlq || c.BackoffBase != tt.base || c.BackoffMax != tt.max {
				t.Errorf("got %q %v %v, want %q %v %v", c.DeadLetterQueueURL, c.BackoffBase, c.BackoffMax, tt.dlq, tt.base, tt.max)
			}
		})
	}
}

func TestLoadRedeliveryErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		variable string
		rule     string
	}{
		{"dlq name, not its URL", map[string]string{"ZEGO_DEAD_LETTER_QUEUE_URL": "zim-deleteconv-dlq"}, "ZEGO_DEAD_LETTER_QUEUE_URL", "not an absolute URL"},
		{"dlq ARN", map[string]string{"ZEGO_DEAD_LETTER_QUEUE_URL": "arn:aws:sqs:us-east-1:123456789012:dlq"}, "ZEGO_DEAD_LETTER_QUEUE_URL", "not an absolute URL"},
		{"dlq plain http", map[string]string{"ZEGO_DEAD_LETTER_QUEUE_URL": "http://sqs.us-east-1.amazonaws.com/123456789012/dlq"}, "ZEGO_DEAD_LETTER_QUEUE_URL", "https"},
		{"base not a duration", map[string]string{"ZEGO_BACKOFF_BASE": "60"}, "ZEGO_BACKOFF_BASE", "Go duration"},
		{"base zero", map[string]string{"ZEGO_BACKOFF_BASE": "0s"}, "ZEGO_BACKOFF_BASE", "positive"},
		{"base negative", map[string]string{"ZEGO_BACKOFF_BASE": "-1s"}, "ZEGO_BACKOFF_BASE", "positive"},
		{"max zero", map[string]string{"ZEGO_BACKOFF_MAX": "0s"}, "ZEGO_BACKOFF_MAX", "positive"},
		{"max over 12h", map[string]string{"ZEGO_BACKOFF_MAX": "12h0m1s"}, "ZEGO_BACKOFF_MAX", "at most 12h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]string{"ZEGO_SECRET_ID": "s"}
			for k, v := range tt.env {
				m[k] = v
			}
			_, err := Load(env(m))
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tt.variable || !strings.Contains(err.Error(), tt.rule) {
				t.Fatalf("err = %v, want a *config.Error for %s containing %q", err, tt.variable, tt.rule)
			}
		})
	}
}

func TestLoadRedeliveryReportsBothDurations(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"ZEGO_SECRET_ID": "s", "ZEGO_BACKOFF_BASE": "x", "ZEGO_BACKOFF_MAX": "y"}))
	for _, v := range []string{"ZEGO_BACKOFF_BASE", "ZEGO_BACKOFF_MAX"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("err = %v, want it to name %s", err, v)
		}
	}
}
