package handler

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const (
	testAppID  uint32 = 1234567890
	testSecret        = "c0ffee00c0ffee00c0ffee00c0ffee00"
	rotatedKey        = "5ec2e75ec2e75ec2e75ec2e75ec2e7aa"
)

// syncBuffer captures the handler's concurrent log and metric writes.
type syncBuffer struct{ testutil.Buffer }

// lines decodes every JSON line written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// fakeCreds is a CredentialsSource whose answers a test controls.
type fakeCreds struct {
	mu        sync.Mutex
	creds     zim.Credentials
	next      *zim.Credentials // what Refresh moves to, if set
	err       error
	refreshes int
	// slow, if set, stands for a Secrets Manager fetch: Credentials returns
	// its error instead, after however long it takes.
	slow func(ctx context.Context) error
}

func (f *fakeCreds) Credentials(ctx context.Context) (zim.Credentials, error) {
	if f.slow != nil {
		return zim.Credentials{}, f.slow(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creds, f.err
}

func (f *fakeCreds) Refresh(_ context.Context, stale zim.Credentials) (zim.Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	if f.next != nil && f.creds == stale {
		f.creds = *f.next
	}
	return f.creds, f.err
}

type harness struct {
	t     *testing.T
	srv   *zimtest.Server
	creds *fakeCreds
	h     *Handler
	logs  *syncBuffer
	emf   *syncBuffer
	resps []string // every response body and error message, for the hygiene checks
}

type harnessOpt func(*harnessConfig)

type harnessConfig struct {
	rate        float64
	callerClaim string
	setupErr    error
	retry       zim.RetryPolicy
	serverOpts  []zimtest.Option
	handlerOpts []Option
	inProcess   bool          // serve zimtest without a socket (for testing/synctest)
	latency     time.Duration // in process: added to every call
}

func withRate(r float64) harnessOpt       { return func(c *harnessConfig) { c.rate = r } }
func withCallerClaim(c string) harnessOpt { return func(h *harnessConfig) { h.callerClaim = c } }
func withSetupErr(err error) harnessOpt   { return func(c *harnessConfig) { c.setupErr = err } }
func withServer(o ...zimtest.Option) harnessOpt {
	return func(c *harnessConfig) { c.serverOpts = append(c.serverOpts, o...) }
}

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	cfg := harnessConfig{
		rate: 1000,
		// Short backoffs keep the retry paths fast; their shape is pkg/zim's concern.
		retry: zim.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RateLimitedMinBackoff: 2 * time.Millisecond},
	}
	for _, o := range opts {
		o(&cfg)
	}
	serverOpts := append([]zimtest.Option{zimtest.WithApp(testAppID, testSecret), zimtest.WithRateLimit(0, time.Second)}, cfg.serverOpts...)
	srv := zimtest.NewUnstartedServer(serverOpts...)
	baseURL, transport := inProcessZIM(srv, cfg.latency)
	if !cfg.inProcess {
		srv.Start()
		baseURL, transport = srv.URL, nil
	}
	t.Cleanup(srv.Close)
	hs := &harness{t: t, srv: srv, creds: &fakeCreds{creds: zim.Credentials{AppID: testAppID, ServerSecret: testSecret}}, logs: &syncBuffer{}, emf: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := zim.New(hs.creds, zim.WithBaseURL(baseURL), zim.WithRateLimit(cfg.rate),
		zim.WithRetry(cfg.retry), zim.WithLogger(log), transport)
	if err != nil {
		t.Fatal(err)
	}
	hs.h = New(client, log, outcome.NewMetrics(hs.emf), cfg.callerClaim, cfg.setupErr, cfg.handlerOpts...)
	t.Cleanup(func() { hs.assertNoSecrets() })
	return hs
}

// invoke runs the handler as the runtime would, with a Lambda context and a deadline.
func (hs *harness) invoke(payload []byte, timeout time.Duration) ([]byte, error) {
	hs.t.Helper()
	ctx, cancel := context.WithTimeout(hs.t.Context(), timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: fmt.Sprintf("req-%d", time.Now().UnixNano())})
	out, err := hs.h.Invoke(ctx, payload)
	hs.resps = append(hs.resps, string(out))
	if err != nil {
		hs.resps = append(hs.resps, err.Error())
	}
	return out, err
}

// seed gives user the conversations.
func (hs *harness) seed(user string, convs ...zim.Conversation) {
	hs.srv.Seed(testAppID, user, convs...)
}

func peer(id string) zim.Conversation {
	return zim.Conversation{ConvID: id, ConvType: zim.ConvTypePeer}
}
func group(id string) zim.Conversation {
	return zim.Conversation{ConvID: id, ConvType: zim.ConvTypeGroup}
}

// assertNoSecrets scans every log line, metric line and answer for the
// ServerSecrets and for every signature the ZIM server received. All of them
// are 32 lowercase hex characters, so one pass over the output's runs of hex
// digits finds them (a job of 10,000 conversations has 20,000 to look for).
func (hs *harness) assertNoSecrets() {
	hs.t.Helper()
	secrets := map[string]bool{testSecret: true, rotatedKey: true}
	signatures := map[string]bool{}
	for _, r := range hs.srv.Requests() {
		if r.Nonce != "" {
			for s := range secrets {
				signatures[zim.Sign(r.AppID, r.Nonce, s, r.Timestamp)] = true
			}
		}
	}
	all := hs.logs.String() + hs.emf.String() + strings.Join(hs.resps, "\n")
	const n = 32
	isHex := func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
	found := map[string]bool{}
	for i := 0; i < len(all); {
		if !isHex(all[i]) {
			i++
			continue
		}
		j := i
		for j < len(all) && isHex(all[j]) {
			j++
		}
		for k := i; k+n <= j; k++ {
			switch w := all[k : k+n]; {
			case secrets[w]:
				found["a ServerSecret"] = true
			case signatures[w]:
				found["a signature"] = true
			}
		}
		i = j
	}
	for what := range found {
		hs.t.Errorf("%s appears in the function's output", what)
	}
	if strings.Contains(all, "Signature=") {
		hs.t.Errorf("a signed query string appears in the function's output")
	}
}

// outcomeLines returns the "request outcome" log lines.
func (hs *harness) outcomeLines() []map[string]any {
	var out []map[string]any
	for _, l := range hs.logs.lines(hs.t) {
		if l["msg"] == "request outcome" {
			out = append(out, l)
		}
	}
	return out
}

// ---- events, modelled on aws-lambda-go's samples (events/testdata) ----

func sample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type httpEvent struct {
	method, path, body string
	b64                bool
	claims             map[string]string
}

// httpAPIEvent is events/apigw-http.json with the method, path, body and JWT claims replaced.
func httpAPIEvent(t *testing.T, e httpEvent) []byte {
	ev := sample(t, "apigw-http.json")
	rc := ev["requestContext"].(map[string]any)
	rc["http"].(map[string]any)["method"] = e.method
	rc["http"].(map[string]any)["path"] = e.path
	rc["routeKey"], ev["routeKey"] = e.method+" "+e.path, e.method+" "+e.path
	ev["rawPath"] = e.path
	ev["body"], ev["isBase64Encoded"] = e.body, e.b64
	if e.claims != nil {
		rc["authorizer"] = map[string]any{"jwt": map[string]any{"claims": e.claims, "scopes": nil}}
	}
	return mustJSON(t, ev)
}

// restEvent is events/apigw-rest.json with the method, path, body and Cognito/JWT claims replaced.
func restEvent(t *testing.T, e httpEvent) []byte {
	ev := sample(t, "apigw-rest.json")
	ev["httpMethod"], ev["path"], ev["resource"] = e.method, e.path, e.path
	rc := ev["requestContext"].(map[string]any)
	rc["httpMethod"], rc["path"], rc["resourcePath"] = e.method, "/prod"+e.path, e.path
	ev["body"], ev["isBase64Encoded"] = e.body, e.b64
	if e.claims != nil {
		rc["authorizer"] = map[string]any{"claims": e.claims}
	}
	return mustJSON(t, ev)
}

type sqsRecord struct {
	id, body, group string
}

// sqsEvent is events/sqs.json's first record repeated with the given ids, bodies and FIFO groups.
func sqsEvent(t *testing.T, recs ...sqsRecord) []byte {
	ev := sample(t, "sqs.json")
	tmpl := ev["Records"].([]any)[0].(map[string]any)
	var out []any
	for i, r := range recs {
		rec := map[string]any{}
		for k, v := range tmpl {
			rec[k] = v
		}
		attrs := map[string]any{}
		for k, v := range tmpl["attributes"].(map[string]any) {
			attrs[k] = v
		}
		if r.group != "" {
			attrs["MessageGroupId"] = r.group
			attrs["SequenceNumber"] = fmt.Sprintf("1886%016d", i)
			rec["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv.fifo"
		}
		rec["attributes"], rec["messageId"], rec["body"] = attrs, r.id, r.body
		out = append(out, rec)
	}
	ev["Records"] = out
	return mustJSON(t, ev)
}

func body(from, conv string, ct int) string {
	return fmt.Sprintf(`{"FromUserId":%q,"ConvId":%q,"ConvType":%d}`, from, conv, ct)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// ---- answers ----

func functionError(t *testing.T, err error) messages.InvokeResponse_Error {
	t.Helper()
	ie, ok := err.(messages.InvokeResponse_Error)
	if !ok {
		t.Fatalf("error %T %v is not a Lambda function error", err, err)
	}
	return ie
}

type apiAnswer struct {
	status  int
	headers map[string]string
	body    map[string]any
}

func decodeHTTPAPI(t *testing.T, out []byte, err error) apiAnswer {
	t.Helper()
	if err != nil {
		t.Fatalf("API Gateway answers must not be function errors: %v", err)
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return apiAnswer{r.StatusCode, r.Headers, decodeBody(t, r.Headers, r.Body)}
}

func decodeREST(t *testing.T, out []byte, err error) apiAnswer {
	t.Helper()
	if err != nil {
		t.Fatalf("API Gateway answers must not be function errors: %v", err)
	}
	var r events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return apiAnswer{r.StatusCode, r.Headers, decodeBody(t, r.Headers, r.Body)}
}

func decodeBody(t *testing.T, h map[string]string, b string) map[string]any {
	t.Helper()
	if h["Content-Type"] != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", h["Content-Type"])
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatalf("body is not a JSON object: %q", b)
	}
	return m
}

func decodeSQS(t *testing.T, out []byte, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatalf("SQS answers must not be function errors (the whole batch would be retried): %v", err)
	}
	if !bytes.Contains(out, []byte(`"batchItemFailures":[`)) {
		t.Fatalf("answer %s has no batchItemFailures list", out)
	}
	var r events.SQSEventResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}
