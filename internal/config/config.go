// Package config reads the function's environment once, at start-up, and
// turns every missing or malformed setting into an error that names the
// variable and the rule it breaks.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// DefaultSecretTTL is how long fetched credentials are used before a refetch
// (the function contract's default). The API URL and rate defaults are
// pkg/zim's: zim.DefaultBaseURL and zim.DefaultRateLimit, capped at
// zim.MaxRateLimit, ZEGO's limit per AppId.
const DefaultSecretTTL = 5 * time.Minute

// Defaults of the SQS backoff (issue 19): a record that failed for a transient
// reason is hidden for min(BackoffMax, BackoffBase × 2^(receives−1)).
// MaxBackoff is SQS's own ceiling on a visibility timeout.
const (
	DefaultBackoffBase = time.Minute
	DefaultBackoffMax  = time.Hour
	MaxBackoff         = 12 * time.Hour
)

// Config is the function's settings.
type Config struct {
	SecretID    string        // ZEGO_SECRET_ID
	APIURL      string        // ZEGO_API_URL
	RateLimit   float64       // ZEGO_RATE_LIMIT, requests/second for this instance
	SecretTTL   time.Duration // ZEGO_SECRET_TTL
	LogLevel    slog.Level    // LOG_LEVEL
	CallerClaim string        // ZEGO_CALLER_CLAIM; empty = JWT mode off
	JobQueueURL string        // ZEGO_JOB_QUEUE_URL; empty = jobs over HTTP and direct invoke are not handed off

	// The shared rate budget (internal/budget), used when StateTable is set;
	// without it, RateLimit paces this instance alone.
	StateTable     string // ZEGO_STATE_TABLE; empty = no shared budget, no registry
	RateBudget     int    // ZEGO_RATE_BUDGET, requests/second of the whole stack
	RateFloor      int    // ZEGO_RATE_FLOOR, this instance's own calls/second without the table: 0 or 1
	RateFloorTotal int    // ZEGO_RATE_FLOOR_TOTAL, the sum of every instance's floor; the pool is RateBudget minus this

	// SQS records that fail (issue 19).
	DeadLetterQueueURL string        // ZEGO_DEAD_LETTER_QUEUE_URL; empty = invalid records are reported failed
	BackoffBase        time.Duration // ZEGO_BACKOFF_BASE
	BackoffMax         time.Duration // ZEGO_BACKOFF_MAX
}

// Error is a setting that is missing or malformed.
type Error struct {
	Variable string
	Rule     string
}

func (e *Error) Error() string { return e.Variable + " " + e.Rule }

// Load reads the settings through getenv (os.Getenv in production). Every
// problem is reported, joined, so one deploy fixes them all.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		APIURL:     zim.DefaultBaseURL,
		RateLimit:  zim.DefaultRateLimit,
		SecretTTL:  DefaultSecretTTL,
		LogLevel:   slog.LevelInfo,
		RateBudget: zim.MaxRateLimit,

		BackoffBase: DefaultBackoffBase,
		BackoffMax:  DefaultBackoffMax,
	}
	var errs []error
	bad := func(v, rule string) { errs = append(errs, &Error{Variable: v, Rule: rule}) }

	c.SecretID = strings.TrimSpace(getenv("ZEGO_SECRET_ID"))
	if c.SecretID == "" {
		bad("ZEGO_SECRET_ID", "is required: the name or ARN of the Secrets Manager secret holding {\"AppId\", \"ServerSecret\"}")
	}
	if v := strings.TrimSpace(getenv("ZEGO_API_URL")); v != "" {
		if err := zim.ValidateBaseURL(v); err != nil {
			bad("ZEGO_API_URL", fmt.Sprintf("is invalid: %v", err))
		} else {
			c.APIURL = v
		}
	}
	if v := strings.TrimSpace(getenv("ZEGO_RATE_LIMIT")); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil:
			bad("ZEGO_RATE_LIMIT", fmt.Sprintf("must be a number of requests per second, got %q", v))
		case !(r > 0) || r > zim.MaxRateLimit:
			bad("ZEGO_RATE_LIMIT", fmt.Sprintf("must be greater than 0 and at most %d (ZEGO's limit per AppId), got %q", zim.MaxRateLimit, v))
		default:
			c.RateLimit = r
		}
	}
	if v := strings.TrimSpace(getenv("ZEGO_SECRET_TTL")); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("ZEGO_SECRET_TTL", fmt.Sprintf("must be a Go duration such as 5m or 90s, got %q", v))
		case d <= 0:
			bad("ZEGO_SECRET_TTL", fmt.Sprintf("must be positive, got %q", v))
		default:
			c.SecretTTL = d
		}
	}
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		switch strings.ToLower(v) {
		case "debug":
			c.LogLevel = slog.LevelDebug
		case "info":
			c.LogLevel = slog.LevelInfo
		case "warn", "warning":
			c.LogLevel = slog.LevelWarn
		case "error":
			c.LogLevel = slog.LevelError
		default:
			bad("LOG_LEVEL", fmt.Sprintf("must be one of debug, info, warn, error, got %q", v))
		}
	}
	c.CallerClaim = strings.TrimSpace(getenv("ZEGO_CALLER_CLAIM"))
	if v := strings.TrimSpace(getenv("ZEGO_JOB_QUEUE_URL")); v != "" {
		if rule := queueURLProblem(v); rule != "" {
			bad("ZEGO_JOB_QUEUE_URL", "must be an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv: "+rule)
		} else {
			c.JobQueueURL = v
		}
	}
	c.loadBudget(getenv, bad)
	loadRedelivery(getenv, &c, bad)
	return c, errors.Join(errs...)
}

// loadBudget reads the shared budget's settings. They are whole numbers: the
// budget promises a count of calls in every one-second window, and the floor
// is one call or none.
func (c *Config) loadBudget(getenv func(string) string, bad func(v, rule string)) {
	if v := strings.TrimSpace(getenv("ZEGO_STATE_TABLE")); v != "" {
		if rule := tableProblem(v); rule != "" {
			bad("ZEGO_STATE_TABLE", "must be a DynamoDB table name or ARN: "+rule)
		} else {
			c.StateTable = v
		}
	}
	budgetOK, totalOK := true, true
	if v := strings.TrimSpace(getenv("ZEGO_RATE_BUDGET")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > zim.MaxRateLimit {
			bad("ZEGO_RATE_BUDGET", fmt.Sprintf("must be a whole number of requests per second for the whole stack, 1 to %d (ZEGO's limit per AppId), got %q", zim.MaxRateLimit, v))
			budgetOK = false
		} else {
			c.RateBudget = n
		}
	}
	if v := strings.TrimSpace(getenv("ZEGO_RATE_FLOOR")); v != "" {
		switch v {
		case "0", "1":
			c.RateFloor = int(v[0] - '0')
		default:
			bad("ZEGO_RATE_FLOOR", fmt.Sprintf("must be 0 or 1 (calls per second this instance may send without the shared table), got %q", v))
		}
	}
	if v := strings.TrimSpace(getenv("ZEGO_RATE_FLOOR_TOTAL")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("ZEGO_RATE_FLOOR_TOTAL", fmt.Sprintf("must be a whole number, 0 or more (the sum of every instance's ZEGO_RATE_FLOOR), got %q", v))
			totalOK = false
		} else {
			c.RateFloorTotal = n
		}
	}
	switch {
	case !budgetOK || !totalOK:
	case c.RateFloorTotal >= c.RateBudget:
		bad("ZEGO_RATE_FLOOR_TOTAL", fmt.Sprintf("must be less than ZEGO_RATE_BUDGET (%d), so that a shared pool is left, got %d", c.RateBudget, c.RateFloorTotal))
	case c.RateFloor > c.RateFloorTotal:
		bad("ZEGO_RATE_FLOOR_TOTAL", fmt.Sprintf("must count this instance's floor (ZEGO_RATE_FLOOR=%d): at least %d, got %d", c.RateFloor, c.RateFloor, c.RateFloorTotal))
	}
}

// tableProblem says what is wrong with a DynamoDB table name or ARN, or ""
// if nothing. The value is not echoed: an ARN names an account.
func tableProblem(v string) string {
	name := v
	if strings.HasPrefix(v, "arn:") {
		// arn:<partition>:dynamodb:<region>:<account>:table/<name>
		parts := strings.SplitN(v, ":", 6)
		if len(parts) != 6 || parts[2] != "dynamodb" || !strings.HasPrefix(parts[5], "table/") {
			return "an ARN must look like arn:aws:dynamodb:<region>:<account>:table/<name>"
		}
		name = strings.TrimPrefix(parts[5], "table/")
	}
	if len(name) < 3 || len(name) > 255 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		return "a table name is 3 to 255 letters, digits, underscores, hyphens or dots"
	}
	return ""
}

// loadRedelivery reads the settings of failed SQS records: the dead-letter
// queue and the backoff (positive Go durations of at most 12h).
func loadRedelivery(getenv func(string) string, c *Config, bad func(v, rule string)) {
	if v := strings.TrimSpace(getenv("ZEGO_DEAD_LETTER_QUEUE_URL")); v != "" {
		if rule := queueURLProblem(v); rule != "" {
			bad("ZEGO_DEAD_LETTER_QUEUE_URL", "must be an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv-dlq: "+rule)
		} else {
			c.DeadLetterQueueURL = v
		}
	}
	duration := func(name string, into *time.Duration) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad(name, fmt.Sprintf("must be a Go duration such as 60s or 1h, got %q", v))
		case d <= 0 || d > MaxBackoff:
			bad(name, fmt.Sprintf("must be positive and at most 12h (SQS's longest visibility timeout), got %q", v))
		default:
			*into = d
		}
	}
	// A base longer than the max is accepted, and the max wins: CloudFormation
	// cannot compare the two parameters, and refusing would stop the queue.
	duration("ZEGO_BACKOFF_BASE", &c.BackoffBase)
	duration("ZEGO_BACKOFF_MAX", &c.BackoffMax)
}

// queueURLProblem says what is wrong with an SQS queue URL, or "" if nothing:
// https (http only to a loopback host, a local SQS such as moto), a host, and
// the path /<12-digit account>/<queue name>. The value is not echoed: it names
// an account.
func queueURLProblem(raw string) string {
	if strings.ContainsAny(raw, "?#") {
		return "it has a query or fragment"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "":
		return "it is not an absolute URL with a host (a queue name or ARN is not its URL)"
	case u.User != nil:
		return "it has user info"
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "it must use https (http only for a loopback host)"
	case u.Scheme != "https" && u.Scheme != "http":
		return "it must use https"
	}
	account, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return "its path must be /<12-digit account id>/<queue name>"
	}
	base := strings.TrimSuffix(name, ".fifo")
	if len(name) > 80 || base == "" || strings.Trim(base, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return "its queue name must be 1 to 80 letters, digits, hyphens or underscores (a FIFO queue's ending in .fifo)"
	}
	return ""
}

// isLoopback reports whether host is "localhost" or an address in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
