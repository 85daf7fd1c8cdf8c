package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
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

// bootstrapEnv reads the environment a function's bootstrap runs with, from
// /proc: what is in effect, not what was configured. ok is false when the
// instance has not started its bootstrap (never invoked).
func bootstrapEnv(t *testing.T, f *devstack.Function) (env map[string]string, ok bool) {
	t.Helper()
	for _, p := range f.Processes() {
		if p.Name != "bootstrap" {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if err != nil {
			t.Fatalf("%s: reading the bootstrap's environment: %v", f.Name, err)
		}
		env = map[string]string{}
		for kv := range bytes.SplitSeq(b, []byte{0}) {
			if k, v, ok := strings.Cut(string(kv), "="); ok {
				env[k] = v
			}
		}
		return env, true
	}
	return nil, false
}

// checkBudgetEnv fails the test unless every function instance that runs
// a bootstrap has the environment the template gives it: the shared table
// through the stack's DynamoDB endpoint, the stack's budget, floor 1 for an
// api instance and 0 for a queue instance, the floors' sum, and no static
// rate. It returns how many instances it checked.
func checkBudgetEnv(t *testing.T, s *devstack.Stack) int {
	t.Helper()
	checked := 0
	queue := s.QueueFunctions()
	for _, f := range append(s.APIFunctions(), queue...) {
		env, ok := bootstrapEnv(t, f)
		if !ok {
			continue
		}
		checked++
		floor := "1"
		if slices.Contains(queue, f) {
			floor = "0"
		}
		want := map[string]string{
			"ZEGO_STATE_TABLE":          s.StateTableName(),
			"AWS_ENDPOINT_URL_DYNAMODB": s.FunctionDynamoDBURL(),
			"ZEGO_RATE_BUDGET":          strconv.Itoa(s.RateBudget()),
			"ZEGO_RATE_FLOOR":           floor,
			"ZEGO_RATE_FLOOR_TOTAL":     strconv.Itoa(len(s.APIFunctions())),
			"ZEGO_RATE_LIMIT":           "",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", f.Name, k, env[k], v)
			}
		}
	}
	if s.StateTableName() == "" || s.RateBudget() > zegoBudget {
		t.Errorf("table %q, budget %d/s: want the shared table and at most ZEGO's %d/s", s.StateTableName(), s.RateBudget(), zegoBudget)
	}
	return checked
}

// zegoCalls returns the requests of the world's app the ZIM server saw since
// the world was made (or its log was last reset), of the given actions, or
// of every action without any: what ZEGO counts against the AppId.
func (w *world) zegoCalls(actions ...string) []zimtest.Request {
	w.t.Helper()
	reqs, err := w.admin.Requests(w.t.Context())
	if err != nil {
		w.t.Fatal(err)
	}
	return slices.DeleteFunc(reqs, func(r zimtest.Request) bool {
		return r.AppID != w.app || (len(actions) > 0 && !slices.Contains(actions, r.Action))
	})
}

// maxWindow is the most requests in any one-second window (t-1s, t], the
// window ZEGO counts over, and the window's end.
func maxWindow(reqs []zimtest.Request) (n int, at time.Time) {
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = r.Time
	}
	slices.SortFunc(times, time.Time.Compare)
	first := 0
	for last, end := range times {
		for !times[first].After(end.Add(-time.Second)) {
			first++
		}
		if c := last - first + 1; c > n {
			n, at = c, end
		}
	}
	return n, at
}

// maxWindowPerApp is maxWindow for each AppId: ZEGO's limit is per AppId.
func maxWindowPerApp(reqs []zimtest.Request) map[uint32]int {
	byApp := map[uint32][]zimtest.Request{}
	for _, r := range reqs {
		byApp[r.AppID] = append(byApp[r.AppID], r)
	}
	most := map[uint32]int{}
	for app, rs := range byApp {
		most[app], _ = maxWindow(rs)
	}
	return most
}

// perSecond counts the requests in consecutive one-second windows [t0+i s,
// t0+(i+1) s) from the first request's arrival: a chart of ZEGO's load
// (maxWindow is the sliding figure ZEGO's limit uses).
func perSecond(reqs []zimtest.Request) []int {
	if len(reqs) == 0 {
		return nil
	}
	t0 := slices.MinFunc(reqs, func(a, b zimtest.Request) int { return a.Time.Compare(b.Time) }).Time
	var counts []int
	for _, r := range reqs {
		i := int(r.Time.Sub(t0) / time.Second)
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	return counts
}

// deletionRate is the rate of the successful deletions among reqs (Code 0,
// HTTP 200, no injected fault) of user ("" for any), from the first to the
// last: (n-1) / span.
func deletionRate(reqs []zimtest.Request, user string) (n int, span time.Duration, perSecond float64) {
	var times []time.Time
	for _, r := range reqs {
		if r.Action == "DeleteConv" && r.Code == 0 && r.HTTPStatus == 200 && r.Fault == "" && (user == "" || r.FromUserID == user) {
			times = append(times, r.Time)
		}
	}
	if len(times) < 2 {
		return len(times), 0, 0
	}
	slices.SortFunc(times, time.Time.Compare)
	span = times[len(times)-1].Sub(times[0])
	return len(times), span, float64(len(times)-1) / span.Seconds()
}

// httpAnswer is one call made by httpCallers.
type httpAnswer struct {
	devstack.HTTPResult
	caller int       // which caller made it
	event  int       // its index in the events
	start  time.Time // when the caller sent it
}

// httpCallers stands for callers on the internet: callers goroutines, each
// sending its share of events (round robin: event i goes to caller
// i%callers) one after the other through the HTTP API stage's throttle to a
// free api instance (Stack.CallHTTP), each call starting no sooner than
// every after the caller's previous one (0: as soon as it is answered). It
// returns the answers in the order of events; a call that could not complete
// fails the test.
func httpCallers(t *testing.T, s *devstack.Stack, callers int, every time.Duration, events [][]byte) []httpAnswer {
	t.Helper()
	answers := make([]httpAnswer, len(events))
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			var next time.Time
			for i := c; i < len(events); i += callers {
				if d := time.Until(next); d > 0 {
					select {
					case <-time.After(d):
					case <-t.Context().Done():
						return
					}
				}
				start := time.Now()
				next = start.Add(every)
				res, err := s.CallHTTP(t.Context(), events[i])
				if err != nil {
					t.Errorf("HTTP call %d (caller %d): %v", i, c, err)
					return
				}
				answers[i] = httpAnswer{HTTPResult: res, caller: c, event: i, start: start}
			}
		})
	}
	wg.Wait()
	return answers
}

// dynamoDBFault switches the functions' DynamoDB to f (netem.Fail, Drop or
// Slow) for d, then back to netem.Pass, in the background; the returned
// channel closes once it is back. The test's cleanup switches it back too.
func dynamoDBFault(t *testing.T, s *devstack.Stack, f netem.Fault, d time.Duration) <-chan struct{} {
	t.Helper()
	if err := s.SetDynamoDBFault(f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.SetDynamoDBFault(netem.Pass) })
	back := make(chan struct{})
	go func() {
		defer close(back)
		select {
		case <-time.After(d):
		case <-t.Context().Done():
		}
		_ = s.SetDynamoDBFault(netem.Pass)
	}()
	return back
}
