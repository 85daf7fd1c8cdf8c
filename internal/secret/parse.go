package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Field names of the secret's JSON, as the contract spells them.
const (
	FieldSecretString = "SecretString"
	FieldAppID        = "AppId"
	FieldServerSecret = "ServerSecret"
)

// Expected is the shape of the secret, for error messages.
const Expected = `{"AppId": 1234567890, "ServerSecret": "<32 hex characters>"}`

// FieldError is a secret that does not have the expected form. Field is
// "AppId", "ServerSecret" or "SecretString" (the value as a whole); Rule says
// what the value must be. Neither ever contains the value.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Rule }

// Parse reads credentials from a SecretString of the form
// {"AppId": 1234567890, "ServerSecret": "<32 hex characters>"}.
//
// AppId is a JSON number or a numeric string, a whole number from 1 to
// 4294967295. ServerSecret is used exactly as stored (it is part of the
// signature, so it is not trimmed or case-folded). Field names are
// case-sensitive; other fields (a "description", for instance) are ignored, so
// operators may annotate the secret. Errors are *FieldError and never contain
// the secret or any part of it.
func Parse(secretString string) (zim.Credentials, error) {
	if strings.TrimSpace(secretString) == "" {
		return zim.Credentials{}, &FieldError{Field: FieldSecretString, Rule: "is empty: store the credentials as " + Expected}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(secretString), &fields); err != nil || fields == nil {
		// The decoder's message quotes the offending character: not repeated here.
		return zim.Credentials{}, &FieldError{Field: FieldSecretString, Rule: "must be a JSON object " + Expected}
	}

	appRaw, err := lookup(fields, FieldAppID)
	if err != nil {
		return zim.Credentials{}, err
	}
	appID, err := parseAppID(appRaw)
	if err != nil {
		return zim.Credentials{}, err
	}

	secRaw, err := lookup(fields, FieldServerSecret)
	if err != nil {
		return zim.Credentials{}, err
	}
	var serverSecret string
	if len(secRaw) == 0 || secRaw[0] != '"' || json.Unmarshal(secRaw, &serverSecret) != nil {
		return zim.Credentials{}, &FieldError{Field: FieldServerSecret, Rule: "must be a JSON string of 32 hexadecimal characters"}
	}

	creds := zim.Credentials{AppID: appID, ServerSecret: serverSecret}
	if err := creds.Validate(); err != nil {
		// Copied, not wrapped: a *zim.ValidationError means "invalid request"
		// to the function, and a bad secret is a configuration error.
		var ve *zim.ValidationError
		if errors.As(err, &ve) {
			return zim.Credentials{}, &FieldError{Field: ve.Field, Rule: ve.Rule}
		}
		return zim.Credentials{}, &FieldError{Field: FieldSecretString, Rule: "does not hold valid credentials"}
	}
	return creds, nil
}

// lookup returns the field's raw JSON, or an error naming it when it is
// missing or null; a near miss in letter case is pointed out.
func lookup(fields map[string]json.RawMessage, name string) (json.RawMessage, error) {
	raw, ok := fields[name]
	if !ok {
		rule := "is missing: store the credentials as " + Expected
		for k := range fields {
			if strings.EqualFold(k, name) {
				rule = "is missing (field names are case-sensitive; found " + strconv.Quote(k) + ")"
				break
			}
		}
		return nil, &FieldError{Field: name, Rule: rule}
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, &FieldError{Field: name, Rule: "must not be null"}
	}
	return raw, nil
}

const ruleAppID = "must be a whole number from 1 to 4294967295 (a JSON number or a numeric string)"

func parseAppID(raw json.RawMessage) (uint32, error) {
	var digits string
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &digits); err != nil {
			return 0, &FieldError{Field: FieldAppID, Rule: ruleAppID}
		}
	} else {
		// A JSON number literal; fractions and exponents fail ParseUint below.
		digits = string(raw)
	}
	// Base 10 takes plain digits only: no sign, prefix or underscores.
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || n == 0 {
		return 0, &FieldError{Field: FieldAppID, Rule: ruleAppID}
	}
	return uint32(n), nil
}
