package zim

import (
	"fmt"
	"log/slog"
)

// redacted stands in for the ServerSecret wherever credentials are printed.
const redacted = "[redacted]"

// Format prints c with its ServerSecret redacted, for every verb, so that a
// stray fmt or log call cannot leak the secret.
func (c Credentials) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprintf(f, "zim.Credentials{AppID:0x%x, ServerSecret:%q}", c.AppID, redacted)
	case verb == 'v' && f.Flag('+'):
		fmt.Fprintf(f, "{AppID:%d ServerSecret:%s}", c.AppID, redacted)
	default:
		fmt.Fprintf(f, "{%d %s}", c.AppID, redacted)
	}
}

// LogValue logs c as its AppId only.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("AppId", uint64(c.AppID)), slog.String("ServerSecret", redacted))
}

// Format prints c with its ServerSecret redacted, like Credentials.
func (c StaticCredentials) Format(f fmt.State, verb rune) { Credentials(c).Format(f, verb) }

// LogValue logs c as its AppId only.
func (c StaticCredentials) LogValue() slog.Value { return Credentials(c).LogValue() }

// String describes the client without its credentials.
func (c *Client) String() string { return "zim.Client(" + c.base + ")" }
