// Package netem puts network latency between a client and a local server: a
// TCP proxy on 127.0.0.1 that forwards to a target address and delays the
// traffic as a long-haul link would, so that local measurements of a cold
// start pay for round trips the way they are paid on AWS.
//
//	p, err := netem.Listen(zimAddr, netem.DefaultProfile().ZEGO)
//	if err != nil { … }
//	defer p.Close()
//	// point the client at "https://" + p.Addr(), then read p.Accepted()
//
// FaultProxy is the package's other proxy: an HTTP reverse proxy in front of
// an AWS-style JSON API (the local stack's DynamoDB) that passes, fails with
// HTTP 500 InternalServerError, drops or slows every request, switched at
// run time with Set, for outage tests.
//
// # The round-trip model
//
// Each direction of a proxied connection is a delay line: the bytes the proxy
// reads at time t are written to the other side at t + RoundTrip/2, in order,
// with no bandwidth limit. A request and its answer therefore cost one
// RoundTrip, a handshake costs its number of round trips (TLS 1.3 one, TLS 1.2
// two), and traffic that flows both ways at once (HTTP/2 streams, pipelining,
// a request body sent while an answer streams back) is not charged a round
// trip per change of direction, which a per-direction-change model would do.
//
// Setup stands for the TCP handshake, which the loopback kernel completes at
// once: nothing crosses the proxy in either direction before the connection's
// accept time + Setup, so a chunk read at time t is delivered at
// max(t, accepted + Setup) + RoundTrip/2. For a protocol where the client
// speaks first (HTTP, TLS) this gives the real timeline: the client's first
// bytes reach the server one Setup plus half a round trip after it connected,
// as they would after a real SYN, SYN-ACK. Setup = RoundTrip models a plain
// TCP handshake; more models DNS or a handshake left out of the local path
// (Secrets Manager is reached over plain HTTP locally, so its TLS handshake is
// folded into its Setup).
//
// The proxy holds at most a few megabytes in flight per direction; past that
// it stops reading, so a slow reader pushes back on the writer as TCP's window
// would. A half-close (EOF) is forwarded after the same delay, as a
// CloseWrite, so a client that shuts down its sending side still gets the
// answer. A reset or a failed write on either side closes both.
//
// # Lifetime
//
// Close stops accepting, closes every proxied connection at once (data still
// in flight is dropped) and waits for all of the proxy's goroutines to return.
// Accepted counts the connections accepted since Listen, so a test can measure
// how many connections a client opens.
package netem
