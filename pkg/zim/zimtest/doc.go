// Package zimtest is an in-memory ZIM server API that behaves like ZEGO's, for
// tests: the same idea as net/http/httptest, for ZEGO's DeleteConv and
// QueryConversationList. It checks what ZEGO checks and answers what ZEGO
// answers, keeps conversations in memory, limits the request rate, logs every
// request, and misbehaves on demand.
//
//	s := zimtest.NewServer(zimtest.WithApp(1234567890, secret))
//	defer s.Close()
//	s.Seed(1234567890, "alice", zim.Conversation{ConvID: "bob"})
//	// point the client at s.URL, then look at s.Requests() and s.Conversations(…)
//
// Where ZEGO documents nothing, this package chooses; each choice is listed
// below, so that tests do not read more into it than there is.
//
// # Requests and answers
//
// The API is served on "/" and on any path that ends in "/", so the server can
// be mounted under a prefix; a path without the trailing slash gets 404. GET and POST are served; other methods answer 405 with an
// Allow header. The common parameters are read from the query string and the
// business fields from the JSON body (up to 1 MiB; a body that cannot be read
// answers 100000012). Content-Type is not checked.
//
// Every answer is JSON {"Code", "Message", "RequestId"} with HTTP 200, success
// or not: ZEGO documents no HTTP status for errors, so only a Fault produces
// another status. RequestId is a fresh 18-digit decimal string per answer.
//
// # Common parameters
//
// The checks run in this order; the first that fails decides the Code (codes
// from ZEGO's "Return codes" page):
//
//	AppId missing, not decimal, 0 or over 32 bits           100000001 (AppId format error)
//	Action missing                                          100000006 (Action is empty)
//	Action other than DeleteConv, QueryConversationList     100000007 (unsupported Action)
//	Timestamp missing                                       100000002 (Timestamp is empty)
//	Timestamp not a decimal integer                         100000003 (Timestamp format error)
//	SignatureNonce missing, or not 16 lowercase hex chars   100000008 (ZEGO: SignatureNonce is empty; chosen for malformed too)
//	SignatureVersion missing                                100000013 (SignatureVersion is empty)
//	SignatureVersion other than "2.0"                       100000014 (unsupported SignatureVersion)
//	Signature missing                                       100000009 (Signature is empty)
//	AppId not configured on this server                     100000011 (get App configuration failed)
//	Timestamp more than 10 minutes from the server's clock  100000004 (signature expired)
//	Signature not md5(AppId+SignatureNonce+ServerSecret+Timestamp) in lowercase hex
//	                                                        100000005 (signature error)
//
// The signature is verified by this package's own code, not package zim's, so
// a signing bug in the client cannot hide. AppId and Timestamp enter it in
// canonical decimal. Nonces are not checked for reuse: tests assert fresh
// nonces from the request log. A request that passes every check is accepted.
//
// # DeleteConv
//
// The body must be a JSON object with FromUserId and ConvId (non-empty strings
// of at most 32 bytes) and ConvType (the integer 0 or 2). Field names are
// matched exactly, as ZEGO spells them; unknown fields are ignored. Anything
// else answers 660000002 with the field and rule in the Message. The character
// set ZEGO's pages give for ids is not enforced.
//
// A valid request deletes the conversation (ConvId, ConvType) from
// FromUserId's list and answers 0. A conversation that does not exist, or is
// not among the user's latest 1000, answers WithMissingConversationCode's code
// (default 660800002, the code ZEGO documents for the same case elsewhere; 0
// answers success). Users need no registration: an unknown user has no
// conversations.
//
// # QueryConversationList
//
// The body has FromUserId (required, as above), Limit and Next. As ZEGO
// documents, a missing or non-positive Limit becomes 100 and one over 500
// becomes 500. Next is 0 on the first call, then the Next of the previous
// answer; a negative Next answers 660000002. Only the user's latest 1000
// conversations (by UpdateTime) are listed, and List is in ascending UpdateTime
// order, as ZEGO's API reference states (Server.Conversations, by contrast,
// returns everything newest first). ConvType is left out of one-on-one items,
// as in ZEGO's example. TotalCount counts all of the user's conversations,
// the invisible ones too. Next is an offset into the visible list, and 0 when
// the page is the last: a client that deletes while paging must start again
// from 0 (or collect first), which is also safe against ZEGO's opaque cursor.
// UpdateTime is in Unix milliseconds.
//
// # Rate limiting
//
// Per AppId, across both actions, at most N accepted requests are allowed in
// any sliding window: at time t the server counts the accepted requests in
// (t-window, t]. A request over the limit answers 660300005 (ZEGO's AppID-level
// limit) and is not counted. The default is 20 per second; see WithRateLimit.
// The window uses the server's clock (WithClock), so testing/synctest or an
// injected clock drives it.
//
// # Faults
//
// Inject queues a Fault; faults are tried in the order injected, and the first
// that matches a request serves it and uses up one of its Times. A fault is
// matched as soon as the request is read, before any check (a fault stands for
// trouble in front of ZEGO's logic, so it fires whatever the request carries,
// and tests can script it exactly). Matching looks at Action (from the query)
// and ConvID (from the body; a body without ConvId matches only faults with no
// ConvID). Then:
//
//   - Delay waits first (cut short when the client gives up or the server
//     closes; the request is then logged with HTTPStatus 0).
//   - Drop closes the connection without an answer.
//   - Body answers that raw text with HTTPStatus (default 200).
//   - Code answers the envelope with that code and HTTPStatus (default 200).
//   - HTTPStatus alone answers that status with a plain-text body.
//   - A fault with only a Delay then lets the request be served normally.
//
// A request answered by a fault that would have passed the common-parameter
// checks counts toward the rate window (it reached the server), even past the
// limit. The fault that served a request is named in Request.Fault.
//
// # Request log
//
// Requests returns every API request in arrival order, once answered: its
// common parameters, body, whether the signature was valid, and the answer
// (Code, RequestId, HTTPStatus). The signature and the secret are never kept.
// The log holds the latest 100,000 requests. Admin calls are not logged.
//
// # Admin API
//
// For servers run as a process, the same server answers JSON under
// "/_zimtest/" (after any mount prefix). AdminClient wraps it.
//
//	GET    /_zimtest/requests                          the request log (Body in base64, as encoding/json writes []byte)
//	DELETE /_zimtest/requests                          empty the log (204)
//	POST   /_zimtest/faults                            a Fault as JSON (204); Delay is a Go duration string ("250ms") or milliseconds (250)
//	POST   /_zimtest/secret                            {"AppId": 1, "ServerSecret": "…"} (204)
//	POST   /_zimtest/seed                              a seed, as LoadSeed reads it (204)
//	GET    /_zimtest/conversations?AppId=&FromUserId=  the user's conversations, newest first
//
// Errors answer 400, 404 or 405 with {"error": "…"}. The admin API has no
// authentication: whoever reaches the server controls it. That is why
// cmd/zimserver listens on loopback only unless told otherwise.
//
// # Seed format
//
// LoadSeed and POST /_zimtest/seed read the format of dev/zim-seed.json:
//
//	{
//	  "apps": [{"AppId": 1234567890, "ServerSecret": "<secret>"}],
//	  "conversations": [
//	    {"AppId": 1234567890, "FromUserId": "alice",
//	     "List": [{"ConvId": "bob", "ConvType": 0}, {"ConvId": "#team-7", "ConvType": 2, "UpdateTime": 1708254395000}]}
//	  ]
//	}
//
// UpdateTime is optional (see Server.Seed: without it, a List reads newest
// first). Apps are added or rotated; conversations may name an app that is
// configured later.
//
// # HTTPS
//
// NewTLSServer (or StartTLS) serves HTTPS, as ZEGO does, so that a client's
// TCP and TLS handshakes and its connection reuse are what they are against
// ZEGO. The server offers TLS 1.2 and 1.3, and HTTP/2 and HTTP/1.1 through
// ALPN; whether ZEGO's hosts offer HTTP/2 is not documented, so a test that
// needs one protocol pins it in its client. Each server makes its own
// certificate authority (ECDSA P-256, valid for a year) and a certificate it
// signs for localhost, 127.0.0.1, ::1 and the listener's IP. Client returns a
// client that trusts it; CertificatePEM returns the authority's certificate
// for anything else: a pool built from it, or a file named by SSL_CERT_FILE,
// which Go's crypto/x509 reads on Linux in place of the system's bundle. An
// AdminClient takes such a client with WithAdminHTTPClient.
//
// # Running it as a process
//
// cmd/zimserver serves a Server on a loopback address and prints
// "ZIM_URL=http://127.0.0.1:PORT" on stdout when ready ("https://…" with
// -tls, which also writes the authority's certificate to a file); see its
// documentation.
package zimtest
