package devstack

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Trigger is the kind of event a sample is.
type Trigger string

// The triggers of the function contract.
const (
	TriggerDirect  Trigger = "direct"
	TriggerHTTPAPI Trigger = "HTTP API"
	TriggerREST    Trigger = "REST API"
	TriggerSQS     Trigger = "SQS"
	TriggerUnknown Trigger = "unknown"
)

// DetectTrigger tells the event's source from its JSON, as Lambda's callers
// shape them: SQS records, an HTTP API payload 2.0, a REST proxy event, or a
// plain request object (direct invocation).
func DetectTrigger(event []byte) Trigger {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
		Version        string          `json:"version"`
		HTTPMethod     *string         `json:"httpMethod"`
		RequestContext json.RawMessage `json:"requestContext"`
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(event, &obj) != nil {
		return TriggerUnknown
	}
	_ = json.Unmarshal(event, &probe)
	var rc map[string]json.RawMessage
	_ = json.Unmarshal(probe.RequestContext, &rc)
	switch {
	case len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs":
		return TriggerSQS
	case probe.Version == "2.0" && rc["http"] != nil:
		return TriggerHTTPAPI
	case probe.HTTPMethod != nil && rc != nil:
		return TriggerREST
	}
	return TriggerDirect
}

// Sample is one sample event of events/.
type Sample struct {
	Path    string // as found, e.g. "events/direct.json"
	Event   []byte
	Trigger Trigger
}

// sampleOrder is the demo's order: one trigger after the other.
var sampleOrder = []string{"direct.json", "apigw-http.json", "apigw-rest.json", "sqs.json"}

// Samples reads dir/*.json in the demo's order: direct, apigw-http,
// apigw-rest, sqs, then any other file sorted by name.
func Samples(dir string) ([]Sample, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("devstack: no sample events (*.json) in %s", dir)
	}
	rank := func(p string) int {
		if i := slices.Index(sampleOrder, filepath.Base(p)); i >= 0 {
			return i
		}
		return len(sampleOrder)
	}
	slices.SortStableFunc(paths, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	var out []Sample
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, Sample{Path: p, Event: b, Trigger: DetectTrigger(b)})
	}
	return out, nil
}

// CheckRequest applies the contract's request rules to a request object,
// independently of the function: one of
//
//	{"FromUserId": "<id>", "ConvId": "<id>", "ConvType": 0|2}
//	{"FromUserId": "<id>", "AllConversations": true}
//
// with no other field, no repeated field, no trailing data. The demo uses it
// to know which outcome each sample should have.
func CheckRequest(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("request must be a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("request is not valid JSON: %v", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%s is not valid JSON: %v", key, err)
		}
		if _, dup := fields[key]; dup {
			return fmt.Errorf("%s is repeated", key)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("request is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("request has trailing data")
	}
	str := func(key string) (string, error) {
		raw, ok := fields[key]
		if !ok {
			return "", fmt.Errorf("%s is missing", key)
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", fmt.Errorf("%s must be a string", key)
		}
		return s, nil
	}
	from, err := str("FromUserId")
	if err != nil {
		return err
	}
	if err := zim.ValidateID("FromUserId", from); err != nil {
		return err
	}
	if raw, ok := fields["AllConversations"]; ok {
		if len(fields) != 2 {
			return errors.New("AllConversations cannot be combined with ConvId or ConvType")
		}
		if string(bytes.TrimSpace(raw)) != "true" {
			return errors.New("AllConversations must be true")
		}
		return nil
	}
	for key := range fields {
		if key != "FromUserId" && key != "ConvId" && key != "ConvType" {
			return fmt.Errorf("%s is not a known field", key)
		}
	}
	conv, err := str("ConvId")
	if err != nil {
		return err
	}
	raw, ok := fields["ConvType"]
	if !ok {
		return errors.New("ConvType is missing")
	}
	var convType int
	if json.Unmarshal(raw, &convType) != nil {
		return errors.New("ConvType must be an integer")
	}
	return zim.DeleteConvRequest{FromUserID: from, ConvID: conv, ConvType: zim.ConvType(convType)}.Validate()
}

// IsStatusRequest reports whether body is a direct job status request of the
// contract: {"FromUserId": "<id>", "JobStatus": true} or {"JobId": "<id>"},
// nothing else.
func IsStatusRequest(body []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return false
	}
	var s string
	switch len(fields) {
	case 1:
		return json.Unmarshal(fields["JobId"], &s) == nil && s != ""
	case 2:
		return json.Unmarshal(fields["FromUserId"], &s) == nil && s != "" && string(bytes.TrimSpace(fields["JobStatus"])) == "true"
	}
	return false
}

// StatusPath is the job status routes' path: GET StatusPath?FromUserId=<id>
// and GET StatusPath/{jobId}.
const StatusPath = "/conversations/jobs"

// apiRequest is what the expectation needs of an API Gateway event.
type apiRequest struct {
	method, path string
	body         []byte
	bodyErr      error
}

// RoutePath is the function's API route (POST only).
const RoutePath = "/conversations/delete"

func parseAPIRequest(t Trigger, event []byte) apiRequest {
	var ev struct {
		HTTPMethod      string `json:"httpMethod"`
		Path            string `json:"path"`
		RawPath         string `json:"rawPath"`
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
		RequestContext  struct {
			HTTP struct {
				Method string `json:"method"`
				Path   string `json:"path"`
			} `json:"http"`
		} `json:"requestContext"`
	}
	_ = json.Unmarshal(event, &ev)
	r := apiRequest{method: ev.HTTPMethod, path: ev.Path}
	if t == TriggerHTTPAPI {
		r.method, r.path = ev.RequestContext.HTTP.Method, ev.RawPath
		if r.path == "" {
			r.path = ev.RequestContext.HTTP.Path
		}
	}
	r.body = []byte(ev.Body)
	if ev.IsBase64Encoded {
		r.body, r.bodyErr = base64.StdEncoding.DecodeString(ev.Body)
	}
	return r
}

// sqsRecord is what the expectation needs of an SQS record.
type sqsRecord struct {
	MessageID string `json:"messageId"`
	Body      string `json:"body"`
}

func parseSQSRecords(event []byte) []sqsRecord {
	var ev struct {
		Records []sqsRecord `json:"Records"`
	}
	_ = json.Unmarshal(event, &ev)
	return ev.Records
}
