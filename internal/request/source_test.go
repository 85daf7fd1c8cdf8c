package request

import (
	"errors"
	"strings"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// TestParseFromSource: the status forms are a direct invocation's only, and
// the Continuation a queue record's only.
func TestParseFromSource(t *testing.T) {
	t.Parallel()
	contBody := cont(`{"JobId":"` + testJobID + `","Round":2,"Deleted":0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05Z"}`)
	tests := []struct {
		name  string
		src   Source
		in    string
		want  Request
		field string
		rule  string
	}{
		{name: "status by id", src: FromDirect, in: `{"JobId":"` + testJobID + `"}`, want: Request{Status: true, JobID: testJobID}},
		{name: "status by user", src: FromDirect, in: `{"JobStatus":true,"FromUserId":"a@b#c"}`, want: Request{Status: true, FromUserID: "a@b#c"}},
		{name: "delete from direct", src: FromDirect, in: `{"FromUserId":"a","AllConversations":true}`, want: Request{FromUserID: "a", All: true}},
		{name: "delete from http", src: FromHTTP, in: `{"FromUserId":"a","ConvId":"b","ConvType":2}`,
			want: Request{FromUserID: "a", Delete: zim.DeleteConvRequest{FromUserID: "a", ConvID: "b", ConvType: 2}}},

		{name: "continuation from direct", src: FromDirect, in: contBody, field: "Continuation", rule: "function onto its job queue only"},
		{name: "continuation from http", src: FromHTTP, in: contBody, field: "Continuation", rule: "function onto its job queue only"},
		{name: "invalid continuation from http", src: FromHTTP, in: cont(`{"Round":0}`), field: "Continuation", rule: "function onto its job queue only"},
		{name: "status over http", src: FromHTTP, in: `{"JobId":"` + testJobID + `"}`, field: "JobId", rule: "GET /conversations/jobs/{jobId}"},
		{name: "status in a queue record", src: FromQueue, in: `{"FromUserId":"a","JobStatus":true}`, field: "JobStatus", rule: "direct invocation"},
		{name: "JobId upper case", src: FromDirect, in: `{"JobId":"` + strings.ToUpper(testJobID) + `"}`, field: "JobId", rule: "32 lowercase hexadecimal"},
		{name: "JobId short", src: FromDirect, in: `{"JobId":"abc"}`, field: "JobId", rule: "32 lowercase hexadecimal"},
		{name: "JobId number", src: FromDirect, in: `{"JobId":7}`, field: "JobId", rule: "JSON string"},
		{name: "JobId with user", src: FromDirect, in: `{"JobId":"` + testJobID + `","FromUserId":"a"}`, field: "FromUserId", rule: "must not be combined with JobId"},
		{name: "JobId with JobStatus", src: FromDirect, in: `{"JobId":"` + testJobID + `","JobStatus":true}`, field: "JobStatus", rule: "must not be combined with JobId"},
		{name: "JobStatus false", src: FromDirect, in: `{"FromUserId":"a","JobStatus":false}`, field: "JobStatus", rule: "must be true"},
		{name: "JobStatus string", src: FromDirect, in: `{"FromUserId":"a","JobStatus":"true"}`, field: "JobStatus", rule: "JSON boolean"},
		{name: "JobStatus without user", src: FromDirect, in: `{"JobStatus":true}`, field: "FromUserId", rule: "is required"},
		{name: "JobStatus empty user", src: FromDirect, in: `{"JobStatus":true,"FromUserId":""}`, field: "FromUserId", rule: "empty"},
		{name: "JobStatus with AllConversations", src: FromDirect, in: `{"FromUserId":"a","JobStatus":true,"AllConversations":true}`, field: "AllConversations", rule: "status request"},
		{name: "JobStatus with ConvId", src: FromDirect, in: `{"FromUserId":"a","JobStatus":true,"ConvId":"b"}`, field: "ConvId", rule: "status request"},
		{name: "JobStatus repeated", src: FromDirect, in: `{"FromUserId":"a","JobStatus":true,"JobStatus":true}`, field: "JobStatus", rule: "only once"},
		{name: "status trailing data", src: FromDirect, in: `{"JobId":"` + testJobID + `"} 1`, rule: "nothing after it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFrom([]byte(tt.in), tt.src)
			if tt.rule == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var ve *zim.ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(ve.Rule, tt.rule) {
				t.Fatalf("err = %v; want field %q and a rule containing %q", err, tt.field, tt.rule)
			}
		})
	}
	// The queue still takes its continuation (the round goes on).
	if req, err := ParseFrom([]byte(contBody), FromQueue); err != nil || req.Continuation == nil {
		t.Fatalf("queue continuation: %+v, %v", req, err)
	}
}

func TestParseContinuationCutoff(t *testing.T) {
	t.Parallel()
	base := `{"JobId":"` + testJobID + `","Round":2,"Deleted":0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05Z"`
	got, err := Parse([]byte(cont(base + `,"Cutoff":1767366245123}`)))
	if err != nil || got.Continuation.Cutoff != 1767366245123 {
		t.Fatalf("got %+v, %v", got.Continuation, err)
	}
	again, err := Parse(ContinuationBody("erin", *got.Continuation))
	if err != nil || *again.Continuation != *got.Continuation {
		t.Fatalf("round trip: %+v, %v", again.Continuation, err)
	}
	for _, bad := range []string{`0`, `-1`, `"1"`, `1.5`, `null`, `1e300`} {
		_, err := Parse([]byte(cont(base + `,"Cutoff":` + bad + `}`)))
		var ve *zim.ValidationError
		if !errors.As(err, &ve) || ve.Field != "Continuation.Cutoff" {
			t.Errorf("Cutoff %s: err = %v", bad, err)
		}
	}
}

func FuzzParseFrom(f *testing.F) {
	for _, s := range []string{
		`{"JobId":"0123456789abcdef0123456789abcdef"}`,
		`{"FromUserId":"alice","JobStatus":true}`,
		`{"FromUserId":"alice","JobStatus":true,"JobId":"0123456789abcdef0123456789abcdef"}`,
		`{"FromUserId":"alice","AllConversations":true}`,
		`{"FromUserId":"erin","AllConversations":true,"Continuation":{"JobId":"0123456789abcdef0123456789abcdef","Round":2,"Deleted":180,"AlreadyDeleted":3,"StartedAt":"2026-01-02T15:04:05Z","Cutoff":1767366245123}}`,
	} {
		for src := FromQueue; src <= FromDirect; src++ {
			f.Add([]byte(s), uint8(src))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, s uint8) {
		src := Source(s % 3)
		req, err := ParseFrom(data, src)
		if err != nil {
			var ve *zim.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a validation error", err)
			}
			return
		}
		switch {
		case req.Continuation != nil && src != FromQueue:
			t.Fatalf("source %d accepted a Continuation", src)
		case req.Status && src != FromDirect:
			t.Fatalf("source %d accepted a status request", src)
		case req.Status && req.JobID != "" && (!ValidJobID(req.JobID) || req.FromUserID != ""):
			t.Fatalf("accepted status request %+v", req)
		case req.Status && req.JobID == "" && zim.ValidateID("FromUserId", req.FromUserID) != nil:
			t.Fatalf("accepted status request %+v", req)
		case req.Status && (req.All || req.Delete.ConvID != ""):
			t.Fatalf("status request mixed with a deletion: %+v", req)
		}
	})
}
