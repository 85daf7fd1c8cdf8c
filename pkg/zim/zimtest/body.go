package zimtest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Business bodies are decoded by exact field name (ZEGO documents "FromUserId",
// not "fromUserID"; encoding/json alone would accept any case and hide a
// client's typo). Unknown fields are ignored, as ZEGO's API does.

// bodyError is a body the server refuses with 660000002; it names the field.
type bodyError struct {
	field string // "" for the body as a whole
	rule  string
}

func (e *bodyError) Error() string {
	if e.field == "" {
		return "body " + e.rule
	}
	return e.field + " " + e.rule
}

// Limits of QueryConversationList's Limit, as ZEGO corrects it.
const (
	defaultListLimit = 100
	maxListLimit     = zim.MaxConversationListLimit
)

// listQuery is QueryConversationList's body after ZEGO's corrections.
type listQuery struct {
	FromUserID string
	Limit      int
	Next       int64
}

// fields splits a JSON object into its members.
func fields(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, &bodyError{rule: "must be a JSON object"}
	}
	return m, nil
}

// present reports whether the member exists and is not null.
func present(m map[string]json.RawMessage, name string) bool {
	raw, ok := m[name]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// idField decodes a required id: a non-empty string of at most 32 bytes.
func idField(m map[string]json.RawMessage, name string) (string, error) {
	if !present(m, name) {
		return "", &bodyError{name, "is required"}
	}
	var v string
	if err := json.Unmarshal(m[name], &v); err != nil {
		return "", &bodyError{name, "must be a string"}
	}
	switch {
	case v == "":
		return "", &bodyError{name, "must not be empty"}
	case len(v) > zim.MaxIDBytes:
		return "", &bodyError{name, fmt.Sprintf("must be at most %d bytes", zim.MaxIDBytes)}
	}
	return v, nil
}

// intField decodes an integer member; ok is false when it is absent or null.
func intField(m map[string]json.RawMessage, name string) (v int64, ok bool, err error) {
	if !present(m, name) {
		return 0, false, nil
	}
	if err := json.Unmarshal(m[name], &v); err != nil {
		return 0, false, &bodyError{name, "must be an integer"}
	}
	return v, true, nil
}

// decodeDeleteConv decodes and validates DeleteConv's body.
func decodeDeleteConv(body []byte) (zim.DeleteConvRequest, error) {
	m, err := fields(body)
	if err != nil {
		return zim.DeleteConvRequest{}, err
	}
	from, err := idField(m, "FromUserId")
	if err != nil {
		return zim.DeleteConvRequest{}, err
	}
	conv, err := idField(m, "ConvId")
	if err != nil {
		return zim.DeleteConvRequest{}, err
	}
	typ, ok, err := intField(m, "ConvType")
	switch {
	case err != nil:
		return zim.DeleteConvRequest{}, err
	case !ok:
		return zim.DeleteConvRequest{}, &bodyError{"ConvType", "is required"}
	case typ != int64(zim.ConvTypePeer) && typ != int64(zim.ConvTypeGroup):
		return zim.DeleteConvRequest{}, &bodyError{"ConvType", "must be 0 (one-on-one) or 2 (group)"}
	}
	return zim.DeleteConvRequest{FromUserID: from, ConvID: conv, ConvType: zim.ConvType(typ)}, nil
}

// decodeListQuery decodes and validates QueryConversationList's body. Like
// ZEGO, it corrects a missing or non-positive Limit to 100 and one over 500 to 500.
func decodeListQuery(body []byte) (listQuery, error) {
	m, err := fields(body)
	if err != nil {
		return listQuery{}, err
	}
	from, err := idField(m, "FromUserId")
	if err != nil {
		return listQuery{}, err
	}
	limit, _, err := intField(m, "Limit")
	if err != nil {
		return listQuery{}, err
	}
	switch {
	case limit <= 0:
		limit = defaultListLimit
	case limit > maxListLimit:
		limit = maxListLimit
	}
	next, _, err := intField(m, "Next")
	if err != nil {
		return listQuery{}, err
	}
	if next < 0 {
		return listQuery{}, &bodyError{"Next", "must not be negative"}
	}
	return listQuery{FromUserID: from, Limit: int(limit), Next: next}, nil
}

// peek extracts what it can of FromUserId, ConvId and ConvType from any body,
// for the request log and fault targeting; it never fails.
func peek(body []byte) (from, conv string, typ zim.ConvType) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", "", 0
	}
	_ = json.Unmarshal(m["FromUserId"], &from)
	_ = json.Unmarshal(m["ConvId"], &conv)
	var t int64
	if json.Unmarshal(m["ConvType"], &t) == nil {
		typ = zim.ConvType(t)
	}
	return from, conv, typ
}
