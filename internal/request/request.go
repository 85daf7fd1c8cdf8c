// Package request parses the function's one unit of work, the same in every
// trigger, strictly: exactly one of the two request forms, nothing else.
package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Request is one unit of work, the same in every trigger. Exactly one form:
//
//	{"FromUserId": "<id>", "ConvId": "<id>", "ConvType": 0|2}  delete one conversation
//	{"FromUserId": "<id>", "AllConversations": true}           delete all of FromUserId's conversations
//
// The second form may also carry a Continuation (written by the function on a
// job's later rounds), in a queue record only. A direct invocation may instead
// ask for a job's status (see ParseFrom). Unknown fields, a missing field, a
// wrong JSON type, a repeated field, trailing data, or mixing the forms are
// invalid.
type Request struct {
	FromUserID string
	// All is the second form: every conversation of FromUserID.
	All bool
	// Delete is the first form (FromUserID repeated inside).
	Delete zim.DeleteConvRequest
	// Continuation is set on a job's later rounds only (see Continuation).
	Continuation *Continuation
	// Status is a status request (direct invocation only): of the job JobID,
	// or, with JobID empty, of FromUserID's latest job.
	Status bool
	JobID  string
}

// Source is where a request came from: it decides which forms are valid.
type Source int

const (
	// FromQueue is an SQS record: either form, and on AllConversations the
	// Continuation the function writes when it sends a job on.
	FromQueue Source = iota
	// FromHTTP is an API Gateway body: either form, no Continuation (only
	// the function writes it, and only onto its queue).
	FromHTTP
	// FromDirect is a direct invocation: as FromHTTP, plus the status forms
	// {"JobId": "<id>"} and {"FromUserId": "<id>", "JobStatus": true}.
	FromDirect
)

const (
	fieldFromUserID = "FromUserId"
	fieldConvID     = "ConvId"
	fieldConvType   = "ConvType"
	fieldAll        = "AllConversations"
	fieldCont       = "Continuation"
	fieldJobID      = "JobId"
	fieldJobStatus  = "JobStatus"
)

// Parse decodes and validates a request object as an SQS record carries it
// (ParseFrom with FromQueue).
func Parse(data []byte) (Request, error) { return ParseFrom(data, FromQueue) }

// ParseFrom decodes and validates a request object from src. Its errors are
// *zim.ValidationError naming the field and the rule.
func ParseFrom(data []byte, src Source) (Request, error) {
	var req Request
	fields, err := object(data, "", "request", []string{fieldFromUserID, fieldConvID, fieldConvType, fieldAll, fieldCont, fieldJobID, fieldJobStatus},
		"is not a known field (expected FromUserId, ConvId, ConvType, or FromUserId with AllConversations)")
	if err != nil {
		return req, err
	}
	if _, ok := fields[fieldCont]; ok && src != FromQueue {
		// A caller could otherwise claim a round of someone's job, or set its counts.
		return req, invalid(fieldCont, "is written by the function onto its job queue only; send {\"FromUserId\", \"AllConversations\": true} to start or join a job")
	}
	_, byID := fields[fieldJobID]
	_, byUser := fields[fieldJobStatus]
	if byID || byUser {
		if src != FromDirect {
			f := fieldJobID
			if !byID {
				f = fieldJobStatus
			}
			rule := "is only valid in a direct invocation's status request"
			if src == FromHTTP {
				rule = "is not a field of the delete request; ask for a job's status with GET /conversations/jobs/{jobId} or GET /conversations/jobs?FromUserId=<id>"
			}
			return req, invalid(f, rule)
		}
		return parseStatus(fields, byID)
	}

	raw, ok := fields[fieldFromUserID]
	if !ok {
		return req, invalid(fieldFromUserID, "is required")
	}
	if req.FromUserID, err = stringField(fieldFromUserID, raw); err != nil {
		return req, err
	}
	if err := zim.ValidateID(fieldFromUserID, req.FromUserID); err != nil {
		return req, err
	}

	if rawAll, ok := fields[fieldAll]; ok {
		for _, f := range []string{fieldConvID, fieldConvType} {
			if _, both := fields[f]; both {
				return req, invalid(f, "must not be combined with AllConversations")
			}
		}
		var all bool
		if err := json.Unmarshal(rawAll, &all); err != nil || isNull(rawAll) {
			return req, invalid(fieldAll, "must be the JSON boolean true")
		}
		if !all {
			return req, invalid(fieldAll, "must be true (to delete one conversation, give ConvId and ConvType instead)")
		}
		req.All = true
		if rawCont, ok := fields[fieldCont]; ok {
			c, err := parseContinuation(rawCont, time.Now())
			if err != nil {
				return req, err
			}
			req.Continuation = &c
		}
		return req, nil
	}
	if _, ok := fields[fieldCont]; ok {
		return req, invalid(fieldCont, "is only valid with AllConversations (the function writes it when it continues a job)")
	}

	raw, ok = fields[fieldConvID]
	if !ok {
		return req, invalid(fieldConvID, "is required")
	}
	convID, err := stringField(fieldConvID, raw)
	if err != nil {
		return req, err
	}
	raw, ok = fields[fieldConvType]
	if !ok {
		return req, invalid(fieldConvType, "is required")
	}
	var n json.Number
	// json.Number also accepts a string holding a number: ConvType must be a bare number.
	if err := json.Unmarshal(raw, &n); err != nil || isNull(raw) || raw[0] == '"' {
		return req, invalid(fieldConvType, "must be the integer 0 (one-on-one) or 2 (group)")
	}
	ct, err := strconv.Atoi(n.String())
	if err != nil {
		return req, invalid(fieldConvType, "must be the integer 0 (one-on-one) or 2 (group)")
	}
	req.Delete = zim.DeleteConvRequest{FromUserID: req.FromUserID, ConvID: convID, ConvType: zim.ConvType(ct)}
	return req, req.Delete.Validate()
}

// parseStatus reads a status request: {"JobId"} alone, or FromUserId with
// "JobStatus": true.
func parseStatus(fields map[string]json.RawMessage, byID bool) (Request, error) {
	req := Request{Status: true}
	for _, f := range []string{fieldConvID, fieldConvType, fieldAll} {
		if _, ok := fields[f]; ok {
			return req, invalid(f, "must not be combined with a status request (JobId or JobStatus)")
		}
	}
	if byID {
		for _, f := range []string{fieldFromUserID, fieldJobStatus} {
			if _, ok := fields[f]; ok {
				return req, invalid(f, "must not be combined with JobId (the job id alone names the job)")
			}
		}
		id, err := stringField(fieldJobID, fields[fieldJobID])
		if err != nil {
			return req, err
		}
		if !ValidJobID(id) {
			return req, invalid(fieldJobID, "must be 32 lowercase hexadecimal characters")
		}
		req.JobID = id
		return req, nil
	}
	var on bool
	if raw := fields[fieldJobStatus]; json.Unmarshal(raw, &on) != nil || isNull(raw) {
		return req, invalid(fieldJobStatus, "must be the JSON boolean true")
	} else if !on {
		return req, invalid(fieldJobStatus, "must be true (it asks for FromUserId's latest job)")
	}
	raw, ok := fields[fieldFromUserID]
	if !ok {
		return req, invalid(fieldFromUserID, "is required with JobStatus")
	}
	var err error
	if req.FromUserID, err = stringField(fieldFromUserID, raw); err != nil {
		return req, err
	}
	return req, zim.ValidateID(fieldFromUserID, req.FromUserID)
}

// object decodes data as one JSON object with no repeated and no unknown
// keys (known lists them; unknown is the rule for any other) and nothing after
// it. prefix ("Continuation.") names a nested object's fields in errors; what
// is the object's name in errors about its shape.
func object(data []byte, prefix, what string, known []string, unknown string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	whole := strings.TrimSuffix(prefix, ".")
	tok, err := dec.Token()
	if err != nil {
		return nil, invalid(whole, what+" must be a JSON object: "+JSONProblem(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalid(whole, what+" must be a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalid(whole, what+" is not valid JSON: "+JSONProblem(err))
		}
		key := tok.(string) // inside an object, the decoder only yields string keys here
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid(prefix+key, "is not valid JSON: "+JSONProblem(err))
		}
		if !slices.Contains(known, key) {
			return nil, invalid(prefix+key, unknown)
		}
		if _, dup := fields[key]; dup {
			return nil, invalid(prefix+key, "must appear only once")
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, invalid(whole, what+" is not valid JSON: "+JSONProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid(whole, what+" must be a single JSON object with nothing after it")
	}
	return fields, nil
}

func stringField(field string, raw json.RawMessage) (string, error) {
	// The decoder would replace invalid UTF-8 with U+FFFD; refuse it instead.
	if !utf8.Valid(raw) {
		return "", invalid(field, "must be valid UTF-8")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || isNull(raw) {
		return "", invalid(field, "must be a JSON string")
	}
	return s, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func invalid(field, rule string) error { return &zim.ValidationError{Field: field, Rule: rule} }

// JSONProblem describes a decoding error without echoing the input.
func JSONProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "malformed JSON"
}
