package zim

import (
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validation rules, shared by every check so that callers can match on them.
const (
	ruleEmpty        = "must not be empty"
	ruleTooLong      = "must be at most 32 bytes"
	ruleUTF8         = "must be valid UTF-8"
	ruleControl      = "must not contain control characters"
	ruleConvType     = "must be 0 (one-on-one) or 2 (group)"
	ruleAppID        = "must not be 0"
	ruleServerSecret = "must be 32 hexadecimal characters"
)

// Validate checks the request against ZEGO's rules for DeleteConv, so that a bad
// request is refused before it costs a rate-limit slot. It returns a
// *ValidationError naming the first field that breaks a rule.
func (r DeleteConvRequest) Validate() error {
	if err := ValidateID("FromUserId", r.FromUserID); err != nil {
		return err
	}
	if err := ValidateID("ConvId", r.ConvID); err != nil {
		return err
	}
	if r.ConvType != ConvTypePeer && r.ConvType != ConvTypeGroup {
		return &ValidationError{Field: "ConvType", Rule: ruleConvType}
	}
	return nil
}

// ValidateID checks a user, conversation or group id: non-empty, at most
// MaxIDBytes bytes, valid UTF-8, no control characters. Other characters are
// allowed, since real ZEGO ids contain '#', '@', '&' and the like. The returned
// *ValidationError carries field as its Field and never the value.
func ValidateID(field, value string) error {
	switch {
	case value == "":
		return &ValidationError{Field: field, Rule: ruleEmpty}
	case len(value) > MaxIDBytes:
		return &ValidationError{Field: field, Rule: ruleTooLong}
	case !utf8.ValidString(value):
		return &ValidationError{Field: field, Rule: ruleUTF8}
	case strings.IndexFunc(value, unicode.IsControl) >= 0:
		return &ValidationError{Field: field, Rule: ruleControl}
	}
	return nil
}

// Validate checks that c can sign a request: a non-zero AppID and a ServerSecret
// of 32 hex characters. The error names the field ("AppId" or "ServerSecret")
// and never contains the secret.
func (c Credentials) Validate() error {
	if c.AppID == 0 {
		return &ValidationError{Field: "AppId", Rule: ruleAppID}
	}
	if len(c.ServerSecret) != 32 || strings.IndexFunc(c.ServerSecret, notHex) >= 0 {
		return &ValidationError{Field: "ServerSecret", Rule: ruleServerSecret}
	}
	return nil
}

func notHex(r rune) bool {
	return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
}

// ValidateBaseURL checks a ZIM server API base URL as WithBaseURL does: an
// absolute https URL (plain http only when the host is a loopback address, for
// local test servers), with no user info, query or fragment. A path is allowed
// and kept as a prefix. The error is a *ValidationError with Field "BaseURL".
func ValidateBaseURL(raw string) error {
	_, err := parseBaseURL(raw)
	return err
}

// parseBaseURL validates raw and returns the URL requests are sent to: the base
// with its path ending in exactly one slash, ready for "?Action=...".
func parseBaseURL(raw string) (string, error) {
	invalid := func(rule string) (string, error) {
		return "", &ValidationError{Field: "BaseURL", Rule: rule}
	}
	// A raw '?' or '#' always starts a query or fragment, even an empty one.
	if strings.ContainsAny(raw, "?#") {
		return invalid("must not contain a query or fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return invalid("must be an absolute URL with a host, e.g. https://zim-api.zego.im")
	}
	if u.User != nil {
		return invalid("must not contain user info")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return invalid("must use https (http is allowed only for a loopback host)")
		}
	default:
		return invalid("must use https (http is allowed only for a loopback host)")
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/") + "/", nil
}

// isLoopback reports whether host is "localhost" or an address in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
