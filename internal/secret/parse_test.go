package secret_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/secret"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const upper = "F00DFACEDEADBEEF0123456789ABCDEF"
	tests := []struct {
		name      string
		in        string
		want      zim.Credentials
		wantField string // "" means success
		wantRule  string // substring of the rule
		forbidden string // a value that must not appear in the error
	}{
		{name: "AppId number", in: `{"AppId": 1234567890, "ServerSecret": "` + secretA + `"}`, want: credsA},
		{name: "AppId numeric string", in: `{"AppId": "1234567890", "ServerSecret": "` + secretA + `"}`, want: credsA},
		{name: "largest AppId", in: `{"AppId": 4294967295, "ServerSecret": "` + secretA + `"}`, want: zim.Credentials{AppID: 4294967295, ServerSecret: secretA}},
		{name: "extra fields ignored", in: `{"description": "ZEGO prod", "AppId": 1234567890, "ServerSecret": "` + secretA + `", "rotated": {"by": "ops"}}`, want: credsA},
		{name: "surrounding whitespace", in: "\n  {\"ServerSecret\":\"" + secretA + "\",\"AppId\":1234567890}\n", want: credsA},
		{name: "upper-case hex kept as is", in: `{"AppId": 1234567890, "ServerSecret": "` + upper + `"}`, want: zim.Credentials{AppID: 1234567890, ServerSecret: upper}},

		{name: "empty", in: "", wantField: "SecretString", wantRule: "is empty"},
		{name: "blank", in: " \n\t", wantField: "SecretString", wantRule: "is empty"},
		{name: "not JSON", in: "AppId=1 ServerSecret=" + secretA, wantField: "SecretString", wantRule: "JSON object", forbidden: secretA},
		{name: "truncated JSON", in: `{"AppId": 1, "ServerSecret": "` + secretA, wantField: "SecretString", wantRule: "JSON object", forbidden: secretA},
		{name: "trailing data", in: `{"AppId": 1, "ServerSecret": "` + secretA + `"} x`, wantField: "SecretString", wantRule: "JSON object", forbidden: secretA},
		{name: "JSON array", in: `[1234567890, "` + secretA + `"]`, wantField: "SecretString", wantRule: "JSON object", forbidden: secretA},
		{name: "JSON string", in: `"` + secretA + `"`, wantField: "SecretString", wantRule: "JSON object", forbidden: secretA},
		{name: "JSON null", in: `null`, wantField: "SecretString", wantRule: "JSON object"},

		{name: "AppId missing", in: `{"ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "is missing", forbidden: secretA},
		{name: "AppId wrong case", in: `{"appId": 1234567890, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: `case-sensitive; found "appId"`, forbidden: "1234567890"},
		{name: "AppId null", in: `{"AppId": null, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "must not be null"},
		{name: "AppId zero", in: `{"AppId": 0, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "from 1 to 4294967295"},
		{name: "AppId zero string", in: `{"AppId": "0", "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "from 1 to 4294967295"},
		{name: "AppId negative", in: `{"AppId": -1234567890, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number", forbidden: "1234567890"},
		{name: "AppId fraction", in: `{"AppId": 1234567890.5, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number", forbidden: "1234567890"},
		{name: "AppId exponent", in: `{"AppId": 1.23456789e9, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number", forbidden: "1.23456789e9"},
		{name: "AppId too large", in: `{"AppId": 4294967296, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "4294967295", forbidden: "4294967296"},
		{name: "AppId non-numeric string", in: `{"AppId": "12ab34cd", "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "numeric string", forbidden: "12ab34cd"},
		{name: "AppId string with spaces", in: `{"AppId": " 1234567890", "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number", forbidden: "1234567890"},
		{name: "AppId signed string", in: `{"AppId": "+1234567890", "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number", forbidden: "1234567890"},
		{name: "AppId boolean", in: `{"AppId": true, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number"},
		{name: "AppId object", in: `{"AppId": {"value": 1}, "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number"},
		{name: "AppId holds the secret by mistake", in: `{"AppId": "` + secretA + `", "ServerSecret": "` + secretA + `"}`, wantField: "AppId", wantRule: "whole number", forbidden: secretA},

		{name: "ServerSecret missing", in: `{"AppId": 1234567890}`, wantField: "ServerSecret", wantRule: "is missing"},
		{name: "ServerSecret wrong case", in: `{"AppId": 1234567890, "serversecret": "` + secretA + `"}`, wantField: "ServerSecret", wantRule: `found "serversecret"`, forbidden: secretA},
		{name: "ServerSecret null", in: `{"AppId": 1234567890, "ServerSecret": null}`, wantField: "ServerSecret", wantRule: "must not be null"},
		{name: "ServerSecret number", in: `{"AppId": 1234567890, "ServerSecret": 12345678901234567890123456789012}`, wantField: "ServerSecret", wantRule: "JSON string", forbidden: "12345678901234567890123456789012"},
		{name: "ServerSecret empty", in: `{"AppId": 1234567890, "ServerSecret": ""}`, wantField: "ServerSecret", wantRule: "32 hexadecimal"},
		{name: "ServerSecret 31 characters", in: `{"AppId": 1234567890, "ServerSecret": "` + secretA[:31] + `"}`, wantField: "ServerSecret", wantRule: "32 hexadecimal", forbidden: secretA[:31]},
		{name: "ServerSecret 33 characters", in: `{"AppId": 1234567890, "ServerSecret": "` + secretA + `0"}`, wantField: "ServerSecret", wantRule: "32 hexadecimal", forbidden: secretA},
		{name: "ServerSecret not hex", in: `{"AppId": 1234567890, "ServerSecret": "` + secretA[:31] + `g"}`, wantField: "ServerSecret", wantRule: "32 hexadecimal", forbidden: secretA[:31]},
		{name: "ServerSecret with newline", in: `{"AppId": 1234567890, "ServerSecret": "` + secretA + `\n"}`, wantField: "ServerSecret", wantRule: "32 hexadecimal", forbidden: secretA},
		{name: "ServerSecret escaped", in: `{"AppId": 1234567890, "ServerSecret": "\u0066` + secretA[1:] + `"}`, want: credsA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := secret.Parse(tt.in)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got != tt.want {
					t.Errorf("Parse = AppId %d, secret %.4q...; want AppId %d, secret %.4q...", got.AppID, got.ServerSecret, tt.want.AppID, tt.want.ServerSecret)
				}
				return
			}
			var fe *secret.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Rule, tt.wantRule) {
				t.Errorf("Parse error = {%s, %s}, want field %s with a rule containing %q", fe.Field, fe.Rule, tt.wantField, tt.wantRule)
			}
			if got != (zim.Credentials{}) {
				t.Errorf("Parse returned credentials with an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantField+" ") {
				t.Errorf("error %q does not start with the field name", msg)
			}
			assertNoSecret(t, "error", msg)
			if tt.forbidden != "" && strings.Contains(msg, tt.forbidden) {
				t.Errorf("error %q contains the value %q", msg, tt.forbidden)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		secretJSON(credsA),
		`{"AppId": "1234567890", "ServerSecret": "` + secretB + `"}`,
		`{"AppId": 0}`, `{"appid": 1, "serversecret": ""}`, `[]`, `null`, `"x"`, ``, `{"AppId": 1e3}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		creds, err := secret.Parse(in)
		if err != nil {
			var fe *secret.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			switch fe.Field {
			case "SecretString", "AppId", "ServerSecret":
			default:
				t.Fatalf("error names field %q", fe.Field)
			}
			// The rule is fixed text, except a quoted field name found in the
			// input; a value never shows up.
			var fields map[string]any
			if json.Unmarshal([]byte(in), &fields) == nil {
				if v, ok := fields["ServerSecret"].(string); ok && len(v) >= 8 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q contains the ServerSecret", err)
				}
			}
			return
		}
		if verr := creds.Validate(); verr != nil {
			t.Fatalf("Parse accepted credentials that do not validate: %v", verr)
		}
		// What was accepted reads back the same from the canonical form.
		again, err := secret.Parse(secretJSON(creds))
		if err != nil || again != creds {
			t.Fatalf("canonical form does not round-trip: %v", err)
		}
	})
}
