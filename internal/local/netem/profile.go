package netem

import "time"

// Link is the latency of one network path.
type Link struct {
	// Setup is added once per connection before its first byte crosses: the
	// TCP handshake's round trip, plus any set-up the local path leaves out.
	Setup time.Duration
	// RoundTrip is the time a request and its answer spend on the wire; each
	// direction is delayed by half of it.
	RoundTrip time.Duration
}

// Profile is a set of links for the function's two remote services.
type Profile struct {
	// SecretsManager is the path to Secrets Manager in the function's region.
	SecretsManager Link
	// ZEGO is the path to ZEGO's ZIM server API.
	ZEGO Link
}

// The default profile: a function in us-east-1 calling Secrets Manager in its
// own region and ZEGO's unified host, zim-api.zego.im. docs/performance.md
// gives the sources.
const (
	// SecretsManagerRoundTrip is one GetSecretValue, service time folded in:
	// the in-region round trip is about 1 ms, the rest is the service.
	SecretsManagerRoundTrip = 30 * time.Millisecond
	// SecretsManagerSetup is TCP plus TLS 1.3 to the regional endpoint, two
	// in-region round trips; the local path is plain HTTP, so both are here.
	SecretsManagerSetup = 2 * time.Millisecond
	// ZEGORoundTrip is us-east-1 to ZEGO's nearest serving region: between
	// us-east-1 and northern California (about 70 ms) or Frankfurt (about
	// 90 ms), well under Singapore or Hong Kong (about 200 ms).
	ZEGORoundTrip = 100 * time.Millisecond
	// ZEGOSetup is the TCP handshake, one round trip; TLS is served for real
	// by the local ZIM server, so it costs its own round trips.
	ZEGOSetup = ZEGORoundTrip
)

// DefaultProfile returns the links of a function in us-east-1 calling ZEGO's
// unified host.
func DefaultProfile() Profile {
	return Profile{
		SecretsManager: Link{Setup: SecretsManagerSetup, RoundTrip: SecretsManagerRoundTrip},
		ZEGO:           Link{Setup: ZEGOSetup, RoundTrip: ZEGORoundTrip},
	}
}
