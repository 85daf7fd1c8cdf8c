package request

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxRounds is the most rounds (invocations) one AllConversations job may
// take. The job chain through the queue is bounded by the function itself, so
// a job that never finishes cannot loop for ever; the template's lowest rate
// share and shortest timeout still let 100,000 conversations finish within it.
const MaxRounds = 10000

// maxCount bounds the counts a continuation carries: far above any real job
// (MaxRounds × 20/s × 900 s is 1.8·10^8), low enough for every integer type.
const maxCount = 1_000_000_000

// maxClockSkew is how far in the future a continuation's StartedAt may be: the
// instance that wrote it may have a clock a little ahead of this one's.
const maxClockSkew = 10 * time.Minute

// Continuation is what a job's later rounds carry: the field only the
// function writes, on the message that sends an unfinished job on through the
// queue. Round 1 is the original request, which carries none.
//
//	"Continuation": {"JobId": "<32 lowercase hex>", "Round": 2, "Deleted": 180,
//	                 "AlreadyDeleted": 3, "StartedAt": "2026-01-02T15:04:05Z"}
type Continuation struct {
	// JobID names the job in every log line of every round.
	JobID string `json:"JobId"`
	// Round is this message's round, 2 to MaxRounds.
	Round int `json:"Round"`
	// Deleted and AlreadyDeleted are the job's totals over the rounds before this one.
	Deleted        int `json:"Deleted"`
	AlreadyDeleted int `json:"AlreadyDeleted"`
	// StartedAt is when round 1 started (UTC), for the job's duration.
	StartedAt time.Time `json:"StartedAt"`
	// Cutoff is the job's bound in ZEGO's UpdateTime (Unix milliseconds):
	// conversations updated after it arrived during the job (see
	// internal/job). 0 (absent, as a message written before the bound
	// existed) lets the next round set it.
	Cutoff int64 `json:"Cutoff,omitempty"`
}

const (
	contJobID     = "JobId"
	contRound     = "Round"
	contDeleted   = "Deleted"
	contAlready   = "AlreadyDeleted"
	contStartedAt = "StartedAt"
	contCutoff    = "Cutoff"
)

// maxCutoff bounds Cutoff: Unix milliseconds of the year 5138, far past any
// UpdateTime, and exact in a float64.
const maxCutoff = 1 << 47

// continuationMessage is the body of a continuation: the request object plus
// the field, in the order a reader expects.
type continuationMessage struct {
	FromUserID       string       `json:"FromUserId"`
	AllConversations bool         `json:"AllConversations"`
	Continuation     Continuation `json:"Continuation"`
}

// ContinuationBody is the message that sends fromUserID's job on with c.
func ContinuationBody(fromUserID string, c Continuation) []byte {
	c.StartedAt = c.StartedAt.UTC()
	b, err := json.Marshal(continuationMessage{FromUserID: fromUserID, AllConversations: true, Continuation: c})
	if err != nil { // strings, integers and a UTC time: cannot fail
		panic(err)
	}
	return b
}

// parseContinuation decodes the Continuation field strictly: every key
// required, no other key, each of its JSON type and range. now bounds
// StartedAt. Errors name the field as "Continuation.Round" and so on.
func parseContinuation(raw json.RawMessage, now time.Time) (Continuation, error) {
	var c Continuation
	fields, err := object(raw, fieldCont+".", fieldCont, []string{contJobID, contRound, contDeleted, contAlready, contStartedAt, contCutoff},
		"is not a known field (expected JobId, Round, Deleted, AlreadyDeleted, StartedAt, Cutoff)")
	if err != nil {
		return c, err
	}
	get := func(key string) (json.RawMessage, error) {
		v, ok := fields[key]
		if !ok {
			return nil, invalid(fieldCont+"."+key, "is required")
		}
		return v, nil
	}

	v, err := get(contJobID)
	if err != nil {
		return c, err
	}
	if c.JobID, err = stringField(fieldCont+"."+contJobID, v); err != nil {
		return c, err
	}
	if !ValidJobID(c.JobID) {
		return c, invalid(fieldCont+"."+contJobID, "must be 32 lowercase hexadecimal characters")
	}

	ints := []struct {
		key      string
		dst      *int
		min, max int
	}{
		{contRound, &c.Round, 2, MaxRounds},
		{contDeleted, &c.Deleted, 0, maxCount},
		{contAlready, &c.AlreadyDeleted, 0, maxCount},
	}
	for _, f := range ints {
		v, err := get(f.key)
		if err != nil {
			return c, err
		}
		if *f.dst, err = intField(fieldCont+"."+f.key, v, f.min, f.max); err != nil {
			return c, err
		}
	}

	v, err = get(contStartedAt)
	if err != nil {
		return c, err
	}
	s, err := stringField(fieldCont+"."+contStartedAt, v)
	if err != nil {
		return c, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		return c, invalid(fieldCont+"."+contStartedAt, "must be an RFC 3339 time in UTC, e.g. 2026-01-02T15:04:05Z")
	}
	if t.After(now.Add(maxClockSkew)) {
		return c, invalid(fieldCont+"."+contStartedAt, fmt.Sprintf("must not be in the future (more than %v ahead of this clock)", maxClockSkew))
	}
	c.StartedAt = t
	if v, ok := fields[contCutoff]; ok { // optional: absent in messages written before it existed
		n, err := intField(fieldCont+"."+contCutoff, v, 1, maxCutoff)
		if err != nil {
			return c, err
		}
		c.Cutoff = int64(n)
	}
	return c, nil
}

// intField decodes a bare JSON integer in [lo, hi]: no string, no fraction,
// no exponent.
func intField(field string, raw json.RawMessage, lo, hi int) (int, error) {
	rule := fmt.Sprintf("must be an integer from %d to %d", lo, hi)
	var n json.Number
	// json.Number also accepts a string holding a number: the field must be a bare number.
	if err := json.Unmarshal(raw, &n); err != nil || isNull(raw) || raw[0] == '"' {
		return 0, invalid(field, rule)
	}
	v, err := strconv.Atoi(n.String())
	if err != nil || v < lo || v > hi {
		return 0, invalid(field, rule)
	}
	return v, nil
}

// ValidJobID reports whether s has the form of a job id: 32 lowercase hex digits.
func ValidJobID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
