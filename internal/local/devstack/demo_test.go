package devstack_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

const sqsEvent = `{"Records": [
	{"messageId": "m-good", "eventSource": "aws:sqs", "body": "{\"FromUserId\": \"dave\", \"ConvId\": \"alice\", \"ConvType\": 0}"},
	{"messageId": "m-bad", "eventSource": "aws:sqs", "body": "{\"FromUserId\": \"dave\", \"ConvId\": \"bob\", \"ConvType\": 1}"}
]}`

func sampleOf(path, event string) devstack.Sample {
	return devstack.Sample{Path: path, Event: []byte(event), Trigger: devstack.DetectTrigger([]byte(event))}
}

func outcomeLog(kv ...any) devstack.LogRecord {
	r := devstack.LogRecord{"msg": "request outcome"}
	for i := 0; i < len(kv); i += 2 {
		r[kv[i].(string)] = kv[i+1]
	}
	return r
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	valid := `{"FromUserId": "alice", "ConvId": "bob", "ConvType": 0}`
	invalid := `{"FromUserId": "alice", "ConvId": "bob", "ConvType": 1}`
	httpEvent := func(method, body string) string {
		return `{"version": "2.0", "rawPath": "/conversations/delete", "requestContext": {"http": {"method": "` + method + `"}}, "body": ` + quote(body) + `}`
	}
	restEvent := `{"httpMethod": "POST", "path": "/conversations/delete", "requestContext": {}, "isBase64Encoded": true, "body": "eyJGcm9tVXNlcklkIjogImNhcm9sIiwgIkNvbnZJZCI6ICJhbGljZSIsICJDb252VHlwZSI6IDB9"}`
	ok200 := `{"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{\"Code\":0,\"Message\":\"success\",\"RequestId\":\"r1\",\"Outcome\":\"deleted\"}"}`
	statusBody := `{"JobId":"j-1","FromUserId":"erin","State":"complete","Deleted":12,"AlreadyDeleted":0,"Failed":0,"Rounds":1}`
	statusEvent := `{"version": "2.0", "rawPath": "/conversations/jobs", "requestContext": {"http": {"method": "GET"}}}`
	bad400 := `{"statusCode": 400, "body": "{\"error\":{\"code\":\"InvalidRequest\",\"message\":\"ConvType must be 0 or 2\",\"field\":\"ConvType\"}}"}`

	for _, tc := range []struct {
		name        string
		sample      devstack.Sample
		inv         devstack.InvokeResult
		err         error
		wantOK      bool
		wantOutcome string
		wantCode    string
	}{
		{"direct deleted", sampleOf("d.json", valid), devstack.InvokeResult{Body: []byte(`{"Code":0,"Message":"ok","RequestId":"r1","Outcome":"deleted"}`)}, nil, true, "deleted", "0"},
		{"direct already deleted", sampleOf("d.json", valid), devstack.InvokeResult{Body: []byte(`{"Code":660800002,"Message":"","RequestId":"r1","Outcome":"already_deleted"}`)}, nil, true, "already_deleted", "660800002"},
		{"direct upstream error", sampleOf("d.json", valid), devstack.InvokeResult{FunctionError: true, ErrorType: "UpstreamError", ErrorMessage: "code 5",
			Logs: []devstack.LogRecord{outcomeLog("outcome", "upstream_error", "zegoCode", 5.0, "zegoRequestId", "r9")}}, nil, false, "UpstreamError", "5"},
		{"direct invalid as expected", sampleOf("d.json", invalid), devstack.InvokeResult{FunctionError: true, ErrorType: "InvalidRequest"}, nil, true, "InvalidRequest", ""},
		{"direct invalid but deleted", sampleOf("d.json", invalid), devstack.InvokeResult{Body: []byte(`{"Code":0,"Outcome":"deleted"}`)}, nil, false, "deleted", "0"},
		{"all conversations", sampleOf("a.json", `{"FromUserId": "erin", "AllConversations": true}`), devstack.InvokeResult{Body: []byte(`{"FromUserId":"erin","Outcome":"deleted","Complete":true,"Deleted":12,"AlreadyDeleted":1,"Failed":0}`)}, nil, true, "deleted (12 conversations deleted, 1 already deleted, 0 failed)", ""},
		{"invocation failed", sampleOf("d.json", valid), devstack.InvokeResult{}, errors.New("emulator gone"), false, "invocation failed", ""},
		{"HTTP API 200", sampleOf("h.json", httpEvent("POST", valid)), devstack.InvokeResult{Body: []byte(ok200)}, nil, true, "deleted", "0"},
		{"HTTP API 400 as expected", sampleOf("h.json", httpEvent("POST", invalid)), devstack.InvokeResult{Body: []byte(bad400)}, nil, true, "InvalidRequest", ""},
		{"HTTP API GET must not succeed", sampleOf("h.json", httpEvent("GET", valid)), devstack.InvokeResult{Body: []byte(ok200)}, nil, false, "deleted", "0"},
		{"REST base64 200", sampleOf("r.json", restEvent), devstack.InvokeResult{Body: []byte(ok200)}, nil, true, "deleted", "0"},
		{"REST 502", sampleOf("r.json", restEvent), devstack.InvokeResult{Body: []byte(`{"statusCode": 502, "body": "{\"error\":{\"code\":\"UpstreamError\",\"message\":\"x\",\"zegoCode\":5,\"requestId\":\"r2\"}}"}`)}, nil, false, "UpstreamError", "5"},
		{"SQS bad record failed", sampleOf("s.json", sqsEvent), devstack.InvokeResult{Body: []byte(`{"batchItemFailures":[{"itemIdentifier":"m-bad"}]}`)}, nil, true, "1 succeeded, 1 failed", ""},
		{"SQS nothing failed", sampleOf("s.json", sqsEvent), devstack.InvokeResult{Body: []byte(`{"batchItemFailures":[]}`)}, nil, false, "2 succeeded, 0 failed", ""},
		{"SQS good record failed too", sampleOf("s.json", sqsEvent), devstack.InvokeResult{Body: []byte(`{"batchItemFailures":[{"itemIdentifier":"m-bad"},{"itemIdentifier":"m-good"}]}`)}, nil, false, "0 succeeded, 2 failed", ""},
		{"SQS unknown id", sampleOf("s.json", sqsEvent), devstack.InvokeResult{Body: []byte(`{"batchItemFailures":[{"itemIdentifier":"m-bad"},{"itemIdentifier":"nope"}]}`)}, nil, false, "0 succeeded, 2 failed", ""},
		{"SQS function error", sampleOf("s.json", sqsEvent), devstack.InvokeResult{FunctionError: true, ErrorType: "Timeout"}, nil, false, "Timeout", ""},
		{"direct status", sampleOf("j.json", `{"FromUserId": "erin", "JobStatus": true}`), devstack.InvokeResult{Body: []byte(statusBody)}, nil, true, "job j-1 complete (12 conversations deleted, 0 already deleted, 0 failed, 1 round(s))", ""},
		{"direct status by id", sampleOf("j.json", `{"JobId": "j-1"}`), devstack.InvokeResult{Body: []byte(statusBody)}, nil, true, "job j-1 complete (12 conversations deleted, 0 already deleted, 0 failed, 1 round(s))", ""},
		{"direct status refused", sampleOf("j.json", `{"FromUserId": "erin", "JobStatus": true}`), devstack.InvokeResult{FunctionError: true, ErrorType: "InvalidRequest"}, nil, false, "InvalidRequest", ""},
		{"HTTP status 200", sampleOf("g.json", statusEvent), devstack.InvokeResult{Body: []byte(`{"statusCode": 200, "body": ` + quote(statusBody) + `}`)}, nil, true, "job j-1 complete (12 conversations deleted, 0 already deleted, 0 failed, 1 round(s))", ""},
		{"HTTP status 404", sampleOf("g.json", statusEvent), devstack.InvokeResult{Body: []byte(`{"statusCode": 404, "body": "{\"error\":{\"code\":\"NotFound\",\"message\":\"no job\"}}"}`)}, nil, true, "NotFound", ""},
		{"HTTP status 400", sampleOf("g.json", statusEvent), devstack.InvokeResult{Body: []byte(bad400)}, nil, false, "InvalidRequest", ""},
		{"unknown shape fails", sampleOf("u.json", `[1]`), devstack.InvokeResult{FunctionError: true, ErrorType: "InvalidRequest"}, nil, true, "InvalidRequest", ""},
	} {
		r := devstack.Evaluate(tc.sample, tc.inv, tc.err)
		code := ""
		if r.ZegoCode != nil {
			code = strconv.Itoa(*r.ZegoCode)
		}
		if r.OK != tc.wantOK || r.Outcome != tc.wantOutcome || code != tc.wantCode {
			t.Errorf("%s: OK %v, Outcome %q, ZegoCode %q; want %v, %q, %q (want: %s)", tc.name, r.OK, r.Outcome, code, tc.wantOK, tc.wantOutcome, tc.wantCode, r.Want)
		}
	}
}

func TestEvaluateSQSRecordsFromLogs(t *testing.T) {
	t.Parallel()
	inv := devstack.InvokeResult{
		Body: []byte(`{"batchItemFailures":[{"itemIdentifier":"m-bad"}]}`),
		Logs: []devstack.LogRecord{
			outcomeLog("messageId", "m-good", "outcome", "deleted", "zegoCode", 0.0, "zegoRequestId", "r1"),
			outcomeLog("messageId", "m-bad", "outcome", "invalid_request", "error", "ConvType must be 0 (one-on-one) or 2 (group)"),
		},
	}
	r := devstack.Evaluate(sampleOf("s.json", sqsEvent), inv, nil)
	if len(r.Records) != 2 {
		t.Fatalf("Records = %+v, want 2", r.Records)
	}
	good, bad := r.Records[0], r.Records[1]
	if good.MessageID != "m-good" || good.Failed || good.Outcome != "deleted" || good.ZegoRequestID != "r1" || good.ZegoCode == nil || *good.ZegoCode != 0 || !good.OK() {
		t.Errorf("good record %+v", good)
	}
	if bad.MessageID != "m-bad" || !bad.Failed || !bad.WantFailed || bad.Outcome != "invalid_request" || !strings.Contains(bad.Reason, "one-on-one") || !bad.OK() {
		t.Errorf("bad record %+v", bad)
	}
}

func TestWriteReport(t *testing.T) {
	t.Parallel()
	results := []devstack.Result{
		devstack.Evaluate(sampleOf("events/direct.json", `{"FromUserId": "alice", "ConvId": "bob", "ConvType": 0}`),
			devstack.InvokeResult{Body: []byte(`{"Code":0,"Message":"ok","RequestId":"r1","Outcome":"deleted"}`), Latency: 12 * time.Millisecond, ColdStart: true}, nil),
		devstack.Evaluate(sampleOf("events/sqs.json", sqsEvent), devstack.InvokeResult{
			Body: []byte(`{"batchItemFailures":[]}`), Latency: 3 * time.Millisecond,
		}, nil),
	}
	reqs := []zimtest.Request{{Action: "DeleteConv", FromUserID: "alice", ConvID: "bob", HTTPStatus: 200, RequestID: "r1"}}
	info := devstack.DemoInfo{ZIMURL: "http://127.0.0.1:1", Emulators: []string{"api http://127.0.0.1:2", "queue-1 http://127.0.0.1:3"}, LogDir: "build/devstack/logs"}

	var report bytes.Buffer
	if err := devstack.WriteReport(&report, info, results, reqs); err != nil {
		t.Fatal(err)
	}
	out := report.String()
	for _, want := range []string{
		"Local stack: ZIM server http://127.0.0.1:1; functions under aws-lambda-rie: api http://127.0.0.1:2, queue-1 http://127.0.0.1:3 (logs in build/devstack/logs)",
		"ok   events/direct.json (direct): deleted, ZEGO Code 0, RequestId r1, 12ms (cold start)",
		"FAIL events/sqs.json (SQS): 2 succeeded, 0 failed, 3ms; expected batchItemFailures [m-bad] (the invalid records)",
		"FAIL   record m-bad: succeeded; ConvType must be 0 (one-on-one) or 2 (group) (expected in batchItemFailures)",
		"  DeleteConv FromUserId=alice ConvId=bob ConvType=0: HTTP 200, Code 0, RequestId r1",
		"1 of 2 samples did not behave as expected: events/sqs.json",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
