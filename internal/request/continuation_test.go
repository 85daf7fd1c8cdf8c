package request

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

const testJobID = "0123456789abcdef0123456789abcdef"

// cont is an AllConversations request whose Continuation object is inner.
func cont(inner string) string {
	return `{"FromUserId":"erin","AllConversations":true,"Continuation":` + inner + `}`
}

func TestParseContinuation(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	good := `{"JobId":"` + testJobID + `","Round":2,"Deleted":180,"AlreadyDeleted":3,"StartedAt":"2026-01-02T15:04:05Z"}`
	got, err := Parse([]byte(cont(good)))
	want := Continuation{JobID: testJobID, Round: 2, Deleted: 180, AlreadyDeleted: 3, StartedAt: started}
	if err != nil || !got.All || got.FromUserID != "erin" || got.Continuation == nil || *got.Continuation != want {
		t.Fatalf("got %+v (%+v), %v; want %+v", got, got.Continuation, err, want)
	}

	// Every other key present and valid, one key changed.
	with := func(key, value string) string {
		m := map[string]string{"JobId": `"` + testJobID + `"`, "Round": "2", "Deleted": "0", "AlreadyDeleted": "0", "StartedAt": `"2026-01-02T15:04:05Z"`}
		m[key] = value
		var b strings.Builder
		b.WriteString("{")
		first := true
		for _, k := range []string{"JobId", "Round", "Deleted", "AlreadyDeleted", "StartedAt"} {
			if m[k] == "" {
				continue
			}
			if !first {
				b.WriteString(",")
			}
			first = false
			b.WriteString(`"` + k + `":` + m[k])
		}
		b.WriteString("}")
		return b.String()
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, in, field, rule string
	}{
		{"without AllConversations", `{"FromUserId":"a","ConvId":"b","ConvType":0,"Continuation":` + good + `}`, "Continuation", "only valid with AllConversations"},
		{"alone with FromUserId", `{"FromUserId":"a","Continuation":` + good + `}`, "Continuation", "only valid with AllConversations"},
		{"not an object", cont(`[]`), "Continuation", "JSON object"},
		{"null", cont(`null`), "Continuation", "JSON object"},
		{"unknown key", cont(`{"JobId":"` + testJobID + `","Round":2,"Deleted":0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05Z","Failed":1}`), "Continuation.Failed", "not a known field"},
		{"repeated key", cont(`{"JobId":"` + testJobID + `","Round":2,"Round":3,"Deleted":0,"AlreadyDeleted":0,"StartedAt":"2026-01-02T15:04:05Z"}`), "Continuation.Round", "only once"},
		{"JobId missing", cont(with("JobId", "")), "Continuation.JobId", "is required"},
		{"Round missing", cont(with("Round", "")), "Continuation.Round", "is required"},
		{"Deleted missing", cont(with("Deleted", "")), "Continuation.Deleted", "is required"},
		{"AlreadyDeleted missing", cont(with("AlreadyDeleted", "")), "Continuation.AlreadyDeleted", "is required"},
		{"StartedAt missing", cont(with("StartedAt", "")), "Continuation.StartedAt", "is required"},
		{"JobId upper case", cont(with("JobId", `"`+strings.ToUpper(testJobID)+`"`)), "Continuation.JobId", "32 lowercase hexadecimal"},
		{"JobId short", cont(with("JobId", `"abc"`)), "Continuation.JobId", "32 lowercase hexadecimal"},
		{"JobId number", cont(with("JobId", `12`)), "Continuation.JobId", "JSON string"},
		{"Round 1", cont(with("Round", "1")), "Continuation.Round", "integer from 2 to 10000"},
		{"Round over the cap", cont(with("Round", "10001")), "Continuation.Round", "integer from 2 to 10000"},
		{"Round fraction", cont(with("Round", "2.5")), "Continuation.Round", "integer"},
		{"Round 2.0", cont(with("Round", "2.0")), "Continuation.Round", "integer"},
		{"Round exponent", cont(with("Round", "2e0")), "Continuation.Round", "integer"},
		{"Round string", cont(with("Round", `"2"`)), "Continuation.Round", "integer"},
		{"Round null", cont(with("Round", `null`)), "Continuation.Round", "integer"},
		{"Round huge", cont(with("Round", `99999999999999999999999`)), "Continuation.Round", "integer"},
		{"Deleted negative", cont(with("Deleted", "-1")), "Continuation.Deleted", "integer from 0 to 1000000000"},
		{"Deleted over the bound", cont(with("Deleted", "1000000001")), "Continuation.Deleted", "integer from 0"},
		{"AlreadyDeleted bool", cont(with("AlreadyDeleted", "true")), "Continuation.AlreadyDeleted", "integer"},
		{"StartedAt not a time", cont(with("StartedAt", `"yesterday"`)), "Continuation.StartedAt", "RFC 3339"},
		{"StartedAt with an offset", cont(with("StartedAt", `"2026-01-02T16:04:05+01:00"`)), "Continuation.StartedAt", "in UTC"},
		{"StartedAt number", cont(with("StartedAt", `1767366245`)), "Continuation.StartedAt", "JSON string"},
		{"StartedAt in the future", cont(with("StartedAt", `"`+future+`"`)), "Continuation.StartedAt", "future"},
		{"truncated", `{"FromUserId":"a","AllConversations":true,"Continuation":{"JobId":`, "Continuation", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in))
			var ve *zim.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *zim.ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Rule, tt.rule) {
				t.Fatalf("got field %q rule %q, want field %q and a rule containing %q", ve.Field, ve.Rule, tt.field, tt.rule)
			}
		})
	}
}

// TestContinuationBodyRoundTrips: what the function writes, it reads back.
func TestContinuationBodyRoundTrips(t *testing.T) {
	t.Parallel()
	c := Continuation{JobID: testJobID, Round: MaxRounds, Deleted: 12345, AlreadyDeleted: 7,
		StartedAt: time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("CET", 3600))}
	b := ContinuationBody("a@b#c", c)
	want := `{"FromUserId":"a@b#c","AllConversations":true,"Continuation":{"JobId":"` + testJobID +
		`","Round":10000,"Deleted":12345,"AlreadyDeleted":7,"StartedAt":"2026-03-04T04:06:07.89Z"}}`
	if string(b) != want {
		t.Fatalf("body %s, want %s", b, want)
	}
	req, err := Parse(b)
	if err != nil || req.Continuation == nil || !req.Continuation.StartedAt.Equal(c.StartedAt) || req.Continuation.Round != c.Round ||
		req.Continuation.Deleted != c.Deleted || req.Continuation.AlreadyDeleted != c.AlreadyDeleted || req.Continuation.JobID != c.JobID {
		t.Fatalf("read back %+v, %v", req.Continuation, err)
	}
}
