package zim

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wantValidation checks that err is a *ValidationError for field and rule.
func wantValidation(t *testing.T, err error, field, rule string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
		return
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v (%T), want *ValidationError", err, err)
	}
	if ve.Field != field || ve.Rule != rule {
		t.Errorf("ValidationError{%q, %q}, want {%q, %q}", ve.Field, ve.Rule, field, rule)
	}
	if !errors.Is(err, ErrInvalidParameter) {
		t.Error("validation error does not match ErrInvalidParameter")
	}
}

func TestDeleteConvRequestValidate(t *testing.T) {
	t.Parallel()
	id32 := strings.Repeat("a", 32)
	tests := []struct {
		name        string
		req         DeleteConvRequest
		field, rule string
	}{
		{"peer", DeleteConvRequest{"alice", "bob", ConvTypePeer}, "", ""},
		{"group", DeleteConvRequest{"alice", "#group-1", ConvTypeGroup}, "", ""},
		{"ZEGO's special characters", DeleteConvRequest{"user@example.com", "#a&b+c=d?e", ConvTypeGroup}, "", ""},
		{"32 bytes", DeleteConvRequest{id32, id32, ConvTypePeer}, "", ""},
		{"multi-byte, 30 bytes", DeleteConvRequest{strings.Repeat("世", 10), "bob", ConvTypePeer}, "", ""},
		{"empty FromUserId", DeleteConvRequest{"", "bob", ConvTypePeer}, "FromUserId", "must not be empty"},
		{"long FromUserId", DeleteConvRequest{id32 + "a", "bob", ConvTypePeer}, "FromUserId", "must be at most 32 bytes"},
		{"33 bytes of runes", DeleteConvRequest{"alice", strings.Repeat("世", 11), ConvTypePeer}, "ConvId", "must be at most 32 bytes"},
		{"invalid UTF-8", DeleteConvRequest{"al\xffice", "bob", ConvTypePeer}, "FromUserId", "must be valid UTF-8"},
		{"NUL", DeleteConvRequest{"alice", "b\x00b", ConvTypePeer}, "ConvId", "must not contain control characters"},
		{"newline", DeleteConvRequest{"alice\n", "bob", ConvTypePeer}, "FromUserId", "must not contain control characters"},
		{"C1 control", DeleteConvRequest{"alice", "b\u0085b", ConvTypePeer}, "ConvId", "must not contain control characters"},
		{"empty ConvId", DeleteConvRequest{"alice", "", ConvTypeGroup}, "ConvId", "must not be empty"},
		{"ConvType 1", DeleteConvRequest{"alice", "bob", 1}, "ConvType", "must be 0 (one-on-one) or 2 (group)"},
		{"ConvType -1", DeleteConvRequest{"alice", "bob", -1}, "ConvType", "must be 0 (one-on-one) or 2 (group)"},
		{"first bad field wins", DeleteConvRequest{"", "", 9}, "FromUserId", "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantValidation(t, tt.req.Validate(), tt.field, tt.rule)
		})
	}
}

func TestValidateIDNamesField(t *testing.T) {
	t.Parallel()
	tests := []struct{ field, value, rule string }{
		{"UserId", "", "must not be empty"},
		{"GroupId", "g\tx", "must not contain control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			err := ValidateID(tt.field, tt.value)
			wantValidation(t, err, tt.field, tt.rule)
			if got := err.Error(); got != tt.field+" "+tt.rule {
				t.Errorf("Error() = %q", got)
			}
		})
	}
}

func TestCredentialsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		creds       Credentials
		field, rule string
	}{
		{"valid", Credentials{1, testSecret}, "", ""},
		{"uppercase hex", Credentials{1, strings.ToUpper(testSecret)}, "", ""},
		{"zero AppId", Credentials{0, testSecret}, "AppId", "must not be 0"},
		{"empty secret", Credentials{1, ""}, "ServerSecret", "must be 32 hexadecimal characters"},
		{"31 characters", Credentials{1, testSecret[1:]}, "ServerSecret", "must be 32 hexadecimal characters"},
		{"33 characters", Credentials{1, testSecret + "0"}, "ServerSecret", "must be 32 hexadecimal characters"},
		{"not hex", Credentials{1, "g" + testSecret[1:]}, "ServerSecret", "must be 32 hexadecimal characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.creds.Validate()
			wantValidation(t, err, tt.field, tt.rule)
			if err != nil && tt.creds.ServerSecret != "" && strings.Contains(err.Error(), tt.creds.ServerSecret) {
				t.Error("error contains the secret")
			}
		})
	}
}

func TestValidateBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		rule string // empty when valid
	}{
		{"https://zim-api.zego.im", ""},
		{"https://zim-api-sgp.zego.im/", ""},
		{"https://zim.example.com:8443/prefix", ""},
		{"HTTPS://zim-api.zego.im", ""},
		{"http://127.0.0.1:8080/prefix", ""},
		{"http://127.9.8.7", ""},
		{"http://[::1]:9000", ""},
		{"http://localhost:1", ""},
		{"http://LocalHost", ""},
		{"http://zim-api.zego.im", "must use https (http is allowed only for a loopback host)"},
		{"http://10.0.0.1", "must use https (http is allowed only for a loopback host)"},
		{"http://localhost.example.com", "must use https (http is allowed only for a loopback host)"},
		{"http://127.0.0.1.nip.io", "must use https (http is allowed only for a loopback host)"},
		{"ftp://127.0.0.1", "must use https (http is allowed only for a loopback host)"},
		{"https://zim-api.zego.im/?a=b", "must not contain a query or fragment"},
		{"https://zim-api.zego.im?", "must not contain a query or fragment"},
		{"https://zim-api.zego.im/#top", "must not contain a query or fragment"},
		{"https://user:pw@zim-api.zego.im", "must not contain user info"},
		{"zim-api.zego.im", "must be an absolute URL with a host, e.g. https://zim-api.zego.im"},
		{"", "must be an absolute URL with a host, e.g. https://zim-api.zego.im"},
		{"https://", "must be an absolute URL with a host, e.g. https://zim-api.zego.im"},
		{"https:zim-api.zego.im", "must be an absolute URL with a host, e.g. https://zim-api.zego.im"},
		{"https://zim api", "must be an absolute URL with a host, e.g. https://zim-api.zego.im"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			field := "BaseURL"
			if tt.rule == "" {
				field = ""
			}
			wantValidation(t, ValidateBaseURL(tt.raw), field, tt.rule)
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	badSecret := "secret-value-that-must-not-leak!"
	ok := StaticCredentials{AppID: 1, ServerSecret: testSecret}
	tests := []struct {
		name  string
		creds CredentialsSource
		opts  []Option
		field string // ValidationError field; empty for a plain error
	}{
		{"nil source", nil, nil, ""},
		{"zero AppId", StaticCredentials{ServerSecret: testSecret}, nil, "AppId"},
		{"empty secret", StaticCredentials{AppID: 1}, nil, "ServerSecret"},
		{"malformed secret", StaticCredentials{AppID: 1, ServerSecret: badSecret}, nil, "ServerSecret"},
		{"malformed secret by pointer", &StaticCredentials{AppID: 1, ServerSecret: badSecret}, nil, "ServerSecret"},
		{"nil pointer to static credentials", (*StaticCredentials)(nil), nil, "AppId"},
		{"plain http to a remote host", ok, []Option{WithBaseURL("http://zim-api.zego.im")}, "BaseURL"},
		{"zero rate", ok, []Option{WithRateLimit(0)}, ""},
		{"negative rate", ok, []Option{WithRateLimit(-5)}, ""},
		{"NaN rate", ok, []Option{WithRateLimit(math.NaN())}, ""},
		{"no attempts", ok, []Option{WithRetry(RetryPolicy{})}, ""},
		{"negative backoff", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, MinBackoff: -1})}, ""},
		{"ceiling below floor", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, MinBackoff: 2, MaxBackoff: 1})}, ""},
		{"negative retry budget", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, RetryBudget: -1, RetryBudgetRatio: 0.1})}, ""},
		{"retry budget that never refills", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, RetryBudget: 5})}, ""},
		{"negative budget ratio", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, RetryBudget: 5, RetryBudgetRatio: -0.1})}, ""},
		{"NaN budget ratio", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, RetryBudget: 5, RetryBudgetRatio: math.NaN()})}, ""},
		{"infinite budget ratio", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: 2, RetryBudget: 5, RetryBudgetRatio: math.Inf(1)})}, ""},
		{"nil HTTP client", ok, []Option{WithHTTPClient(nil)}, ""},
		{"nil clock", ok, []Option{WithClock(nil)}, ""},
		{"nil nonce source", ok, []Option{WithNonceSource(nil)}, ""},
		{"nil logger", ok, []Option{WithLogger(nil)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.creds, tt.opts...)
			if err == nil {
				t.Fatalf("New = %s, nil; want an error", c)
			}
			if strings.Contains(err.Error(), badSecret) {
				t.Errorf("error %q contains the secret", err)
			}
			var ve *ValidationError
			if tt.field != "" && (!errors.As(err, &ve) || ve.Field != tt.field) {
				t.Errorf("err = %v, want a *ValidationError for %s", err, tt.field)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		creds CredentialsSource
		opts  []Option
	}{
		{"defaults", testCreds, nil},
		{"static credentials by pointer", &testCreds, nil},
		// A dynamic source is asked per attempt, not at New: it may not be reachable yet.
		{"dynamic source", &rotatingSource{}, nil},
		{"every option", testCreds, []Option{
			WithBaseURL("https://zim-api-fra.zego.im"), WithHTTPClient(&http.Client{}), WithRateLimit(5),
			WithRetry(DefaultRetryPolicy), WithClock(time.Now), WithLogger(slog.New(slog.DiscardHandler)),
			WithRateLimit(math.Inf(1)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.creds, tt.opts...); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := New(testCreds)
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://zim-api.zego.im/" {
		t.Errorf("base = %q", c.base)
	}
	if c.http == http.DefaultClient || c.http.Timeout != 10*time.Second {
		t.Errorf("HTTP client: want an own client with a 10s timeout, got timeout %v", c.http.Timeout)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr == http.DefaultTransport || tr.TLSHandshakeTimeout == 0 || tr.ResponseHeaderTimeout == 0 {
		t.Errorf("transport: want a clone of http.DefaultTransport with explicit timeouts, got %T", c.http.Transport)
	}
	if c.retry != DefaultRetryPolicy {
		t.Errorf("retry = %+v", c.retry)
	}
	if c.budget == nil || c.budget.tokens != 10 || c.budget.size != 10 || c.budget.perAnswer != 0.1 {
		t.Errorf("retry budget = %+v, want a full bucket of 10 refilled by 0.1", c.budget)
	}
	if p, ok := c.limiter.(*pacer); !ok {
		t.Errorf("limiter: %T, want the Client's own pacer", c.limiter)
	} else if got, want := float64(p.lim.Limit()), 20*0.97; math.Abs(got-want) > 1e-9 || p.lim.Burst() != 1 {
		t.Errorf("limiter: %v/s burst %d, want %v/s burst 1", got, p.lim.Burst(), want)
	}
	if c.log.Enabled(t.Context(), slog.LevelError) {
		t.Error("default logger is not silent")
	}
}
