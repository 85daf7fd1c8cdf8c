package request

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

func TestParseRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		want  Request
		field string
		rule  string
	}{
		{name: "one-on-one", in: `{"FromUserId":"alice","ConvId":"bob","ConvType":0}`,
			want: Request{FromUserID: "alice", Delete: zim.DeleteConvRequest{FromUserID: "alice", ConvID: "bob", ConvType: 0}}},
		{name: "group, ZEGO id characters, any order", in: ` {"ConvType":2, "ConvId":"#g&1+=?", "FromUserId":"a@b#c"} `,
			want: Request{FromUserID: "a@b#c", Delete: zim.DeleteConvRequest{FromUserID: "a@b#c", ConvID: "#g&1+=?", ConvType: 2}}},
		{name: "32-byte multibyte id", in: `{"FromUserId":"` + strings.Repeat("é", 16) + `","ConvId":"b","ConvType":0}`,
			want: Request{FromUserID: strings.Repeat("é", 16), Delete: zim.DeleteConvRequest{FromUserID: strings.Repeat("é", 16), ConvID: "b"}}},
		{name: "all conversations", in: `{"FromUserId":"alice","AllConversations":true}`, want: Request{FromUserID: "alice", All: true}},

		{name: "missing FromUserId", in: `{"ConvId":"b","ConvType":0}`, field: "FromUserId", rule: "is required"},
		{name: "missing ConvId", in: `{"FromUserId":"a","ConvType":0}`, field: "ConvId", rule: "is required"},
		{name: "missing ConvType", in: `{"FromUserId":"a","ConvId":"b"}`, field: "ConvType", rule: "is required"},
		{name: "empty FromUserId", in: `{"FromUserId":"","ConvId":"b","ConvType":0}`, field: "FromUserId", rule: "empty"},
		{name: "33-byte ConvId", in: `{"FromUserId":"a","ConvId":"` + strings.Repeat("x", 33) + `","ConvType":0}`, field: "ConvId", rule: "32 bytes"},
		{name: "control character", in: `{"FromUserId":"a\u0007","ConvId":"b","ConvType":0}`, field: "FromUserId", rule: "control"},
		{name: "invalid UTF-8", in: "{\"FromUserId\":\"a\xff\",\"ConvId\":\"b\",\"ConvType\":0}", field: "FromUserId", rule: "UTF-8"},
		{name: "ConvType 1", in: `{"FromUserId":"a","ConvId":"b","ConvType":1}`, field: "ConvType", rule: "0 (one-on-one) or 2 (group)"},
		{name: "ConvType 2.0", in: `{"FromUserId":"a","ConvId":"b","ConvType":2.0}`, field: "ConvType", rule: "integer"},
		{name: "ConvType string", in: `{"FromUserId":"a","ConvId":"b","ConvType":"0"}`, field: "ConvType", rule: "integer"},
		{name: "ConvType null", in: `{"FromUserId":"a","ConvId":"b","ConvType":null}`, field: "ConvType", rule: "integer"},
		{name: "FromUserId number", in: `{"FromUserId":7,"ConvId":"b","ConvType":0}`, field: "FromUserId", rule: "JSON string"},
		{name: "ConvId null", in: `{"FromUserId":"a","ConvId":null,"ConvType":0}`, field: "ConvId", rule: "JSON string"},
		{name: "unknown field", in: `{"FromUserId":"a","ConvId":"b","ConvType":0,"convid":"c"}`, field: "convid", rule: "not a known field"},
		{name: "repeated field", in: `{"FromUserId":"a","ConvId":"b","ConvId":"c","ConvType":0}`, field: "ConvId", rule: "only once"},
		{name: "trailing data", in: `{"FromUserId":"a","ConvId":"b","ConvType":0} {}`, rule: "nothing after it"},
		{name: "not an object", in: `[]`, rule: "JSON object"},
		{name: "truncated", in: `{"FromUserId":"a"`, rule: "not valid JSON"},
		{name: "empty", in: ``, rule: "JSON object"},
		{name: "all with ConvId", in: `{"FromUserId":"a","AllConversations":true,"ConvId":"b"}`, field: "ConvId", rule: "must not be combined"},
		{name: "all with ConvType", in: `{"FromUserId":"a","ConvType":0,"AllConversations":true}`, field: "ConvType", rule: "must not be combined"},
		{name: "all false", in: `{"FromUserId":"a","AllConversations":false}`, field: "AllConversations", rule: "must be true"},
		{name: "all as string", in: `{"FromUserId":"a","AllConversations":"true"}`, field: "AllConversations", rule: "boolean true"},
		{name: "all without user", in: `{"AllConversations":true}`, field: "FromUserId", rule: "is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(tt.in))
			if tt.rule == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var ve *zim.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *zim.ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Rule, tt.rule) {
				t.Fatalf("got field %q rule %q, want field %q and a rule containing %q", ve.Field, ve.Rule, tt.field, tt.rule)
			}
			if !errors.Is(err, zim.ErrInvalidParameter) || outcome.Classify(t.Context(), err) != outcome.InvalidRequest {
				t.Errorf("a validation error must classify as an invalid request")
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"FromUserId":"alice","ConvId":"bob","ConvType":0}`,
		`{"FromUserId":"alice","AllConversations":true}`,
		`{"FromUserId":"a","ConvId":"b","ConvType":2.5e3}`,
		`{"FromUserId":"\u0000","ConvId":"b","ConvType":0}`,
		`[1,2,3]`, `null`, `{"a":{"b":[`,
		`{"FromUserId":"erin","AllConversations":true,"Continuation":{"JobId":"0123456789abcdef0123456789abcdef","Round":2,"Deleted":180,"AlreadyDeleted":3,"StartedAt":"2026-01-02T15:04:05Z"}}`,
		`{"FromUserId":"erin","AllConversations":true,"Continuation":{"JobId":"0123456789abcdef0123456789abcdef","Round":1e1,"Deleted":-0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05.999999999Z"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := Parse(data)
		if err != nil {
			var ve *zim.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a validation error", err)
			}
			return
		}
		if req.All {
			if zim.ValidateID("FromUserId", req.FromUserID) != nil {
				t.Fatalf("accepted an invalid FromUserId %q", req.FromUserID)
			}
			if c := req.Continuation; c != nil {
				if !ValidJobID(c.JobID) || c.Round < 2 || c.Round > MaxRounds || c.Deleted < 0 || c.Deleted > maxCount ||
					c.AlreadyDeleted < 0 || c.AlreadyDeleted > maxCount || c.StartedAt.Location() != time.UTC {
					t.Fatalf("accepted an invalid continuation %+v", c)
				}
				// What the function would write for it reads back the same.
				again, err := Parse(ContinuationBody(req.FromUserID, *c))
				if err != nil || again.Continuation == nil || *again.Continuation != *c {
					t.Fatalf("continuation %+v does not round-trip: %+v, %v", c, again.Continuation, err)
				}
			}
			return
		}
		if req.Continuation != nil {
			t.Fatalf("accepted a Continuation without AllConversations: %+v", req)
		}
		if err := req.Delete.Validate(); err != nil {
			t.Fatalf("accepted an invalid request %+v: %v", req, err)
		}
	})
}
