package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// world is a test's view of a stack: the function(s) and the ZIM server's
// admin API, with the request log emptied at the start.
type world struct {
	t     *testing.T
	s     *devstack.Stack
	admin *zimtest.AdminClient
	app   uint32
}

func newWorld(t *testing.T, s *devstack.Stack) *world {
	t.Helper()
	w := &world{t: t, s: s, admin: zimtest.NewAdminClient(s.ZIMURL()), app: s.AppID()}
	if err := w.admin.ResetRequests(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function and server logs: %s", s.LogDir())
		}
	})
	return w
}

func (w *world) seed(user string, convs ...zim.Conversation) {
	w.t.Helper()
	if err := w.admin.Seed(w.t.Context(), w.app, user, convs...); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) has(user string, conv zim.Conversation) bool {
	w.t.Helper()
	convs, err := w.admin.Conversations(w.t.Context(), w.app, user)
	if err != nil {
		w.t.Fatal(err)
	}
	return slices.ContainsFunc(convs, func(c zim.Conversation) bool { return c.ConvID == conv.ConvID && c.ConvType == conv.ConvType })
}

// deletes returns the DeleteConv requests the ZIM server answered since the
// world was made.
func (w *world) deletes() []zimtest.Request {
	w.t.Helper()
	reqs, err := w.admin.Requests(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	return slices.DeleteFunc(reqs, func(r zimtest.Request) bool { return r.Action != "DeleteConv" })
}

func (w *world) inject(f zimtest.Fault) {
	w.t.Helper()
	if err := w.admin.Inject(w.t.Context(), f); err != nil {
		w.t.Fatal(err)
	}
}

type invoker interface {
	Invoke(context.Context, []byte) (devstack.InvokeResult, error)
}

func invoke(t *testing.T, f invoker, event []byte) devstack.InvokeResult {
	t.Helper()
	res, err := f.Invoke(t.Context(), event)
	if err != nil {
		t.Fatalf("invoking with %s: %v", event, err)
	}
	return res
}

// success is the contract's success answer (direct, and API Gateway's body).
type success struct {
	Code      int
	Message   string
	RequestID string `json:"RequestId"`
	Outcome   string
}

// directSuccess fails the test unless res is a success answer.
func directSuccess(t *testing.T, res devstack.InvokeResult) success {
	t.Helper()
	if res.FunctionError {
		t.Fatalf("function error %s: %s", res.ErrorType, res.ErrorMessage)
	}
	var s success
	if err := strictJSON(res.Body, &s); err != nil {
		t.Fatalf("answer %s: %v", res.Body, err)
	}
	return s
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// apiResponse is an API Gateway proxy response (either payload format).
type apiResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Field     string `json:"field"`
		ZegoCode  int    `json:"zegoCode"`
		RequestID string `json:"requestId"`
	} `json:"error"`
}

func apiAnswer(t *testing.T, res devstack.InvokeResult) apiResponse {
	t.Helper()
	if res.FunctionError {
		t.Fatalf("function error %s: %s", res.ErrorType, res.ErrorMessage)
	}
	var r apiResponse
	if err := json.Unmarshal(res.Body, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("answer %s is not an API Gateway response (%v)", res.Body, err)
	}
	if ct := header(r.Headers, "Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return r
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func batchFailures(t *testing.T, res devstack.InvokeResult) []string {
	t.Helper()
	if res.FunctionError {
		t.Fatalf("function error %s: %s", res.ErrorType, res.ErrorMessage)
	}
	var r struct {
		BatchItemFailures *[]struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(res.Body, &r); err != nil || r.BatchItemFailures == nil {
		t.Fatalf("answer %s has no batchItemFailures (%v)", res.Body, err)
	}
	ids := []string{}
	for _, f := range *r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func direct(from, conv string, convType zim.ConvType) []byte {
	return fmt.Appendf(nil, `{"FromUserId": %q, "ConvId": %q, "ConvType": %d}`, from, conv, convType)
}

// httpAPI is events/apigw-http.json with another body.
func httpAPI(t *testing.T, body []byte) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(sample(t, "apigw-http.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["body"], ev["isBase64Encoded"] = string(body), false
	b, _ := json.Marshal(ev)
	return b
}

// sqsBatch is events/sqs.json with the given records (message id → body), in order.
func sqsBatch(t *testing.T, records ...[2]string) []byte {
	t.Helper()
	var ev struct {
		Records []map[string]any
	}
	if err := json.Unmarshal(sample(t, "sqs.json"), &ev); err != nil {
		t.Fatal(err)
	}
	tmpl := ev.Records[0]
	ev.Records = nil
	for _, r := range records {
		rec := maps.Clone(tmpl)
		sum := md5.Sum([]byte(r[1]))
		rec["messageId"], rec["body"], rec["md5OfBody"], rec["receiptHandle"] = r[0], r[1], hex.EncodeToString(sum[:]), "AQEB"+r[0]
		ev.Records = append(ev.Records, rec)
	}
	b, _ := json.Marshal(ev)
	return b
}

// outcomeLine is the function's log line for one request outcome.
func outcomeLine(res devstack.InvokeResult, key, value string) devstack.LogRecord {
	for _, l := range res.Logs {
		if l.String("msg") == "request outcome" && (key == "" || l.String(key) == value) {
			return l
		}
	}
	return nil
}

func peer(id string) zim.Conversation {
	return zim.Conversation{ConvID: id, ConvType: zim.ConvTypePeer}
}
func group(id string) zim.Conversation {
	return zim.Conversation{ConvID: id, ConvType: zim.ConvTypeGroup}
}
