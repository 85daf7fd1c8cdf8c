package handler

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
)

type eventKind int

const (
	kindUnknown eventKind = iota
	kindDirect
	kindSQS
	kindHTTPAPI
	kindREST
)

// probe holds just enough of any event to tell the triggers apart; decoding
// into the wrong aws-lambda-go type would not fail, so the source is decided
// from the raw JSON first. SQS records, the common case under load, are
// decoded here once and reused.
type probe struct {
	Records        []events.SQSMessage `json:"Records"`
	Version        string              `json:"version"`
	HTTPMethod     *string             `json:"httpMethod"`
	RequestContext *struct {
		HTTP *json.RawMessage `json:"http"`
	} `json:"requestContext"`

	// The request's own fields, only to recognise a direct invocation.
	FromUserID       *json.RawMessage `json:"FromUserId"`
	ConvID           *json.RawMessage `json:"ConvId"`
	ConvType         *json.RawMessage `json:"ConvType"`
	AllConversations *json.RawMessage `json:"AllConversations"`
	JobID            *json.RawMessage `json:"JobId"`
	JobStatus        *json.RawMessage `json:"JobStatus"`
}

// detect tells the trigger from the raw event. For SQS it also returns the records.
func detect(payload []byte) (eventKind, []events.SQSMessage) {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		// Not JSON, not an object, or fields of unexpected types (e.g.
		// "Records": 1): no AWS event looks like that, so it is a malformed
		// direct request and the request rules say what is wrong.
		return kindDirect, nil
	}
	switch {
	case len(p.Records) > 0 && p.Records[0].EventSource == "aws:sqs":
		return kindSQS, p.Records
	case p.Version == "2.0" && p.RequestContext != nil && p.RequestContext.HTTP != nil:
		return kindHTTPAPI, nil
	case p.HTTPMethod != nil && p.RequestContext != nil:
		return kindREST, nil
	case p.FromUserID != nil || p.ConvID != nil || p.ConvType != nil || p.AllConversations != nil || p.JobID != nil || p.JobStatus != nil:
		return kindDirect, nil
	}
	return kindUnknown, nil
}
