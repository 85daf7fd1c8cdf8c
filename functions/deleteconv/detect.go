package main

import (
	"encoding/json"
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
// from the raw JSON first.
type probe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	Version        string          `json:"version"`
	HTTPMethod     *string         `json:"httpMethod"`
	RequestContext json.RawMessage `json:"requestContext"`
}

func detect(payload []byte) eventKind {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		// Not an object: only a (malformed) direct request can be meant.
		return kindDirect
	}
	has := func(k string) bool { _, ok := raw[k]; return ok }
	var p probe
	// Field types may not match (e.g. a request with "Records": 1); fall back to the keys.
	_ = json.Unmarshal(payload, &p)
	switch {
	case len(p.Records) > 0 && p.Records[0].EventSource == "aws:sqs":
		return kindSQS
	case p.Version == "2.0" && has("requestContext") && hasKey(p.RequestContext, "http"):
		return kindHTTPAPI
	case p.HTTPMethod != nil && has("requestContext"):
		return kindREST
	case has("FromUserId") || has("ConvId") || has("ConvType") || has("AllConversations"):
		return kindDirect
	}
	return kindUnknown
}

func hasKey(obj json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}
