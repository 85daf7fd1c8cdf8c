package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// Result is what the demo makes of one sample's invocation.
type Result struct {
	Sample Sample
	Invoke InvokeResult
	// Err is set when the invocation did not complete.
	Err error
	// OK reports whether the outcome is the one the sample should have: a
	// valid request succeeds, an invalid one fails as an invalid request, and
	// an SQS batch reports exactly its invalid records as failed.
	OK bool
	// Want describes the expected outcome when OK is false.
	Want string
	// Outcome is the function's outcome (e.g. "deleted", "InvalidRequest"),
	// or for SQS a count of records.
	Outcome string
	// Status is the API Gateway status code (0 for other triggers).
	Status        int
	ZegoCode      *int
	ZegoRequestID string
	// Detail is the error message of a failed outcome.
	Detail string
	// Records are the SQS batch's records, in the event's order.
	Records []RecordResult
}

// RecordResult is one SQS record of a batch.
type RecordResult struct {
	MessageID string
	// Failed: the record is in batchItemFailures.
	Failed bool
	// WantFailed: the record's body breaks the request rules (CheckRequest).
	WantFailed bool
	// Outcome, ZegoCode, ZegoRequestID and Reason come from the function's
	// log line for this message id (Reason falls back to CheckRequest's).
	Outcome       string
	ZegoCode      *int
	ZegoRequestID string
	Reason        string
}

// OK reports whether the record ended as expected.
func (r RecordResult) OK() bool { return r.Failed == r.WantFailed }

// successBody is the contract's success answer (direct, and API Gateway's body).
type successBody struct {
	Code      *int   `json:"Code"`
	Message   string `json:"Message"`
	RequestID string `json:"RequestId"`
	Outcome   string `json:"Outcome"`
	// An AllConversations request's summary.
	Complete       *bool `json:"Complete"`
	Deleted        int   `json:"Deleted"`
	AlreadyDeleted int   `json:"AlreadyDeleted"`
	Failed         int   `json:"Failed"`
	// A job status answer's.
	JobID  string `json:"JobId"`
	State  string `json:"State"`
	Rounds int    `json:"Rounds"`
	Error  *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Field     string `json:"field"`
		ZegoCode  *int   `json:"zegoCode"`
		RequestID string `json:"requestId"`
	} `json:"error"`
}

func succeeded(outcome string) bool { return outcome == "deleted" || outcome == "already_deleted" }

// isStatus reports whether the answer is a job's status body.
func (b successBody) isStatus() bool { return b.JobID != "" && b.State != "" }

// outcomeText is the answer's outcome, with an AllConversations summary.
func (b successBody) outcomeText() string {
	if b.isStatus() {
		return fmt.Sprintf("job %s %s (%d conversations deleted, %d already deleted, %d failed, %d round(s))", b.JobID, b.State, b.Deleted, b.AlreadyDeleted, b.Failed, b.Rounds)
	}
	if b.Complete == nil {
		return b.Outcome
	}
	s := fmt.Sprintf("%s (%d conversations deleted, %d already deleted, %d failed", b.Outcome, b.Deleted, b.AlreadyDeleted, b.Failed)
	if !*b.Complete {
		s += ", not complete"
	}
	return s + ")"
}

// Evaluate compares one invocation's answer with what the sample should get.
func Evaluate(s Sample, inv InvokeResult, err error) Result {
	r := Result{Sample: s, Invoke: inv, Err: err}
	if err != nil {
		r.Outcome, r.Detail, r.Want = "invocation failed", err.Error(), "an answer"
		return r
	}
	switch s.Trigger {
	case TriggerDirect:
		evalDirect(&r)
	case TriggerHTTPAPI, TriggerREST:
		evalAPI(&r)
	case TriggerSQS:
		evalSQS(&r)
	default:
		r.Want = "a function error (no known event shape)"
		r.OK = inv.FunctionError
		r.Outcome, r.Detail = inv.ErrorType, inv.ErrorMessage
	}
	return r
}

func evalDirect(r *Result) {
	inv := r.Invoke
	if IsStatusRequest(r.Sample.Event) {
		evalStatus(r)
		return
	}
	want := CheckRequest(r.Sample.Event)
	if want == nil {
		r.Want = "deleted or already_deleted"
	} else {
		r.Want = "InvalidRequest (" + want.Error() + ")"
	}
	if inv.FunctionError {
		r.Outcome, r.Detail = inv.ErrorType, inv.ErrorMessage
		r.OK = want != nil && inv.ErrorType == "InvalidRequest"
		r.fromLog()
		return
	}
	var b successBody
	if json.Unmarshal(inv.Body, &b) != nil {
		r.Outcome, r.Detail = "unexpected answer", snippet(inv.Body)
		return
	}
	r.Outcome, r.ZegoCode, r.ZegoRequestID = b.outcomeText(), b.Code, b.RequestID
	// A job the api function handed to the job queue (its 3 s budget) is
	// accepted: the queue function finishes it.
	r.OK = want == nil && (succeeded(b.Outcome) || b.Complete != nil && b.Outcome == "accepted")
}

// evalStatus expects a job status request to answer with a status body
// (the demo's earlier samples ran a job for their users).
func evalStatus(r *Result) {
	inv := r.Invoke
	r.Want = "a job's status"
	if inv.FunctionError {
		r.Outcome, r.Detail = inv.ErrorType, inv.ErrorMessage
		return
	}
	var b successBody
	if json.Unmarshal(inv.Body, &b) != nil || !b.isStatus() {
		r.Outcome, r.Detail = "unexpected answer", snippet(inv.Body)
		return
	}
	r.Outcome, r.OK = b.outcomeText(), true
}

func evalAPI(r *Result) {
	req := parseAPIRequest(r.Sample.Trigger, r.Sample.Event)
	if req.method == http.MethodGet && (strings.HasSuffix(req.path, StatusPath) || strings.Contains(req.path, StatusPath+"/")) {
		evalAPIStatus(r)
		return
	}
	var want error
	switch {
	case !strings.HasSuffix(req.path, RoutePath):
		want = fmt.Errorf("path %q is not the route", req.path)
	case req.method != http.MethodPost:
		want = fmt.Errorf("method %s is not POST", req.method)
	case req.bodyErr != nil:
		want = fmt.Errorf("body: %v", req.bodyErr)
	case len(req.body) > 16<<10:
		want = fmt.Errorf("body over 16 KiB")
	default:
		want = CheckRequest(req.body)
	}
	if want == nil {
		r.Want = "200 deleted or already_deleted"
	} else {
		r.Want = "a 4xx status (" + want.Error() + ")"
	}
	b, ok := r.proxyAnswer()
	if !ok {
		return
	}
	if b.Error != nil {
		r.Outcome, r.Detail, r.ZegoCode, r.ZegoRequestID = b.Error.Code, b.Error.Message, b.Error.ZegoCode, b.Error.RequestID
	} else {
		r.Outcome, r.ZegoCode, r.ZegoRequestID = b.outcomeText(), b.Code, b.RequestID
	}
	if want == nil {
		r.OK = r.Status == http.StatusOK && succeeded(b.Outcome)
	} else {
		r.OK = r.Status/100 == 4
	}
	if r.ZegoCode == nil {
		r.fromLog()
	}
}

// proxyAnswer decodes an API Gateway proxy answer into r.Status and the
// body; false (with r's outcome set) for a function error or another answer.
func (r *Result) proxyAnswer() (successBody, bool) {
	inv := r.Invoke
	if inv.FunctionError {
		r.Outcome, r.Detail = inv.ErrorType, inv.ErrorMessage
		return successBody{}, false
	}
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if json.Unmarshal(inv.Body, &resp) != nil || resp.StatusCode == 0 {
		r.Outcome, r.Detail = "unexpected answer", snippet(inv.Body)
		return successBody{}, false
	}
	r.Status = resp.StatusCode
	var b successBody
	_ = json.Unmarshal([]byte(resp.Body), &b)
	return b, true
}

// evalAPIStatus expects GET on the job status routes to answer 200 with a
// status body, or 404 with the error object when the user has no job.
func evalAPIStatus(r *Result) {
	r.Want = "200 with a job's status, or 404"
	b, ok := r.proxyAnswer()
	if !ok {
		return
	}
	switch {
	case b.Error != nil:
		r.Outcome, r.Detail = b.Error.Code, b.Error.Message
		r.OK = r.Status == http.StatusNotFound
	case b.isStatus():
		r.Outcome, r.OK = b.outcomeText(), r.Status == http.StatusOK
	default:
		r.Outcome, r.Detail = "unexpected answer", snippet(r.Invoke.Body)
	}
}

func evalSQS(r *Result) {
	inv := r.Invoke
	records := parseSQSRecords(r.Sample.Event)
	var wantFailed []string
	for _, rec := range records {
		if CheckRequest([]byte(rec.Body)) != nil {
			wantFailed = append(wantFailed, rec.MessageID)
		}
	}
	r.Want = fmt.Sprintf("batchItemFailures %v (the invalid records)", wantFailed)
	if inv.FunctionError {
		r.Outcome, r.Detail = inv.ErrorType, inv.ErrorMessage
		return
	}
	var resp struct {
		BatchItemFailures *[]struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if json.Unmarshal(inv.Body, &resp) != nil || resp.BatchItemFailures == nil {
		r.Outcome, r.Detail = "unexpected answer", snippet(inv.Body)
		return
	}
	var failed []string
	for _, f := range *resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	r.OK = true
	for _, id := range failed {
		if !slices.ContainsFunc(records, func(rec sqsRecord) bool { return rec.MessageID == id }) {
			r.OK = false
			r.Detail = fmt.Sprintf("batchItemFailures names %q, which is not a record of the batch", id)
		}
	}
	for _, rec := range records {
		rr := RecordResult{MessageID: rec.MessageID, Failed: slices.Contains(failed, rec.MessageID)}
		if err := CheckRequest([]byte(rec.Body)); err != nil {
			rr.WantFailed, rr.Reason = true, err.Error()
		}
		if l := findLog(inv.Logs, "messageId", rec.MessageID); l != nil {
			rr.Outcome, rr.ZegoCode, rr.ZegoRequestID = l.String("outcome"), logCode(l), l.String("zegoRequestId")
			if e := l.String("error"); e != "" {
				rr.Reason = e
			}
		}
		if rr.Outcome == "" {
			rr.Outcome = "succeeded"
			if rr.Failed {
				rr.Outcome = "failed"
			}
		}
		r.OK = r.OK && rr.OK()
		r.Records = append(r.Records, rr)
	}
	r.Outcome = fmt.Sprintf("%d succeeded, %d failed", len(records)-len(failed), len(failed))
}

// fromLog fills what the answer did not say from the function's outcome line.
func (r *Result) fromLog() {
	l := findLog(r.Invoke.Logs, "", "")
	if l == nil {
		return
	}
	if r.ZegoCode == nil {
		r.ZegoCode = logCode(l)
	}
	if r.ZegoRequestID == "" {
		r.ZegoRequestID = l.String("zegoRequestId")
	}
}

// findLog returns the function's outcome line whose key has value (any
// outcome line when key is "").
func findLog(logs []LogRecord, key, value string) LogRecord {
	for _, l := range logs {
		if _, ok := l["outcome"]; ok && (key == "" || l.String(key) == value) {
			return l
		}
	}
	return nil
}

func logCode(l LogRecord) *int {
	if n, ok := l.Number("zegoCode"); ok {
		c := int(n)
		return &c
	}
	return nil
}

// DemoInfo is what the report says about the stack.
type DemoInfo struct {
	ZIMURL, LogDir string
	// Emulators are the functions' names and URLs, e.g. "api http://127.0.0.1:40123".
	Emulators []string
}

// RunDemo invokes each sample in turn, then writes the report to w with what
// the local ZIM server saw. ok reports whether every sample behaved as
// expected; err is for a demo that could not run to the end.
func RunDemo(ctx context.Context, s *Stack, samples []Sample, w io.Writer) (ok bool, err error) {
	admin := s.Admin()
	if err := admin.ResetRequests(ctx); err != nil {
		return false, err
	}
	var results []Result
	for _, sample := range samples {
		// As deployed, SQS events reach the queue function; one caller at a
		// time finds the same warm api instance, as on Lambda.
		f := s.Function()
		if q := s.QueueFunctions(); sample.Trigger == TriggerSQS && len(q) > 0 {
			f = q[0]
		}
		inv, err := f.Invoke(ctx, sample.Event)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		results = append(results, Evaluate(sample, inv, err))
	}
	reqs, err := admin.Requests(ctx)
	if err != nil {
		return false, err
	}
	info := DemoInfo{ZIMURL: s.ZIMURL(), LogDir: s.LogDir()}
	for _, f := range append(s.APIFunctions(), s.QueueFunctions()...) {
		info.Emulators = append(info.Emulators, f.Name+" "+f.URL)
	}
	if err := WriteReport(w, info, results, reqs); err != nil {
		return false, err
	}
	ok = true
	for _, r := range results {
		ok = ok && r.OK
	}
	return ok, nil
}

// WriteReport writes the demo's report: one plain line per fact.
func WriteReport(w io.Writer, info DemoInfo, results []Result, reqs []zimtest.Request) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("Local stack: ZIM server %s; functions under aws-lambda-rie: %s (logs in %s)", info.ZIMURL, strings.Join(info.Emulators, ", "), info.LogDir)
	line("")
	var bad []string
	for _, r := range results {
		l := fmt.Sprintf("%s %s (%s): %s", mark(r.OK), r.Sample.Path, r.Sample.Trigger, r.Outcome)
		if r.Status != 0 {
			l += ", HTTP " + strconv.Itoa(r.Status)
		}
		l += zegoText(r.ZegoCode, r.ZegoRequestID) + ", " + latencyText(r.Invoke)
		if d := detail(r); d != "" {
			l += "; " + d
		}
		line("%s", l)
		for _, rec := range r.Records {
			l := fmt.Sprintf("%s   record %s: %s", mark(rec.OK()), rec.MessageID, recordOutcome(rec)) + zegoText(rec.ZegoCode, rec.ZegoRequestID)
			if d := recordDetail(rec); d != "" {
				l += "; " + d
			}
			line("%s", l)
		}
		if !r.OK {
			bad = append(bad, r.Sample.Path)
		}
	}

	line("")
	line("The local ZIM server saw %d request(s):", len(reqs))
	for _, q := range reqs {
		l := fmt.Sprintf("  %s FromUserId=%s", q.Action, q.FromUserID)
		if q.ConvID != "" {
			l += fmt.Sprintf(" ConvId=%s ConvType=%d", q.ConvID, q.ConvType)
		}
		l += fmt.Sprintf(": HTTP %d, Code %d", q.HTTPStatus, q.Code)
		if q.RequestID != "" {
			l += ", RequestId " + q.RequestID
		}
		if q.Fault != "" {
			l += ", fault " + q.Fault
		}
		line("%s", l)
	}

	line("")
	if len(bad) == 0 {
		line("All %d samples behaved as expected.", len(results))
	} else {
		line("%d of %d samples did not behave as expected: %s", len(bad), len(results), strings.Join(bad, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mark(ok bool) string {
	if ok {
		return "ok  "
	}
	return "FAIL"
}

func detail(r Result) string {
	d := r.Detail
	if !r.OK {
		if d != "" {
			d += "; "
		}
		d += "expected " + r.Want
	}
	return d
}

func zegoText(code *int, requestID string) string {
	s := ""
	if code != nil {
		s += ", ZEGO Code " + strconv.Itoa(*code)
	}
	if requestID != "" {
		s += ", RequestId " + requestID
	}
	return s
}

func recordOutcome(rec RecordResult) string {
	if rec.Failed {
		return "in batchItemFailures: " + rec.Outcome
	}
	return rec.Outcome
}

func recordDetail(rec RecordResult) string {
	d := ""
	if rec.Failed || rec.WantFailed {
		d = rec.Reason
	}
	switch {
	case rec.Failed && rec.WantFailed:
		d += " (expected: the record is invalid)"
	case rec.Failed:
		d += " (expected success)"
	case rec.WantFailed:
		d += " (expected in batchItemFailures)"
	}
	return strings.TrimSpace(d)
}

func latencyText(inv InvokeResult) string {
	s := inv.Latency.Round(100 * time.Microsecond).String()
	if inv.Latency >= 10*time.Millisecond {
		s = inv.Latency.Round(time.Millisecond).String()
	}
	if inv.ColdStart {
		s += " (cold start)"
	}
	return s
}
