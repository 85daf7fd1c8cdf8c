package zimtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes the server misbehave for the next matching API calls. See the
// package documentation ("Faults") for how faults are matched and counted.
type Fault struct {
	// Action limits the fault to one API ("DeleteConv"); "" matches any request.
	Action string `json:"Action,omitempty"`
	// ConvID limits the fault to requests whose body names this ConvId; "" matches any.
	ConvID string `json:"ConvId,omitempty"`
	// Times is how many matching calls the fault answers; 0 means 1.
	Times int `json:"Times,omitempty"`
	// HTTPStatus answers with this status: with a JSON envelope when Code is
	// not 0, else with a plain-text body.
	HTTPStatus int `json:"HTTPStatus,omitempty"`
	// Code answers with this ZEGO code in the JSON envelope (HTTP 200 unless
	// HTTPStatus says otherwise).
	Code int `json:"Code,omitempty"`
	// Delay waits this long before answering; it ends early when the client
	// gives up or the server closes. A fault with only a Delay delays the
	// normal answer.
	Delay time.Duration `json:"Delay,omitempty"`
	// Drop closes the connection without answering (after Delay).
	Drop bool `json:"Drop,omitempty"`
	// Body answers this raw body (not the envelope), with HTTPStatus or 200.
	Body string `json:"Body,omitempty"`
}

// answers reports whether the fault replaces the answer (rather than only delaying it).
func (f Fault) answers() bool {
	return f.Drop || f.HTTPStatus != 0 || f.Code != 0 || f.Body != ""
}

// validate reports a fault that cannot be served.
func (f Fault) validate() error {
	switch {
	case f.Times < 0:
		return errors.New("zimtest: Fault.Times must not be negative")
	case f.Delay < 0:
		return errors.New("zimtest: Fault.Delay must not be negative")
	case f.HTTPStatus != 0 && (f.HTTPStatus < 100 || f.HTTPStatus > 599):
		return fmt.Errorf("zimtest: Fault.HTTPStatus %d is not an HTTP status", f.HTTPStatus)
	case !f.answers() && f.Delay == 0:
		return errors.New("zimtest: Fault does nothing: set Drop, HTTPStatus, Code, Body or Delay")
	}
	return nil
}

// String describes the fault in one line: what it matches and what it does.
func (f Fault) String() string {
	var b strings.Builder
	if f.Action == "" {
		b.WriteString("any action")
	} else {
		b.WriteString(f.Action)
	}
	if f.ConvID != "" {
		fmt.Fprintf(&b, " ConvId=%q", f.ConvID)
	}
	b.WriteString(":")
	if f.Delay > 0 {
		fmt.Fprintf(&b, " delay %s", f.Delay)
	}
	switch {
	case f.Drop:
		b.WriteString(" drop")
	case f.Body != "":
		fmt.Fprintf(&b, " HTTP %d body %q", orDefault(f.HTTPStatus, http.StatusOK), truncate(f.Body, 32))
	case f.Code != 0:
		fmt.Fprintf(&b, " HTTP %d code %d", orDefault(f.HTTPStatus, http.StatusOK), f.Code)
	case f.HTTPStatus != 0:
		fmt.Fprintf(&b, " HTTP %d", f.HTTPStatus)
	}
	return b.String()
}

// MarshalJSON writes Delay as a Go duration string ("1.5s").
func (f Fault) MarshalJSON() ([]byte, error) {
	type plain Fault
	var delay string
	if f.Delay != 0 {
		delay = f.Delay.String()
	}
	return json.Marshal(struct {
		plain
		Delay string `json:"Delay,omitempty"`
	}{plain(f), delay})
}

// UnmarshalJSON reads Delay as a Go duration string ("250ms", "1.5s") or as a
// number of milliseconds. Unknown fields are an error, so a typo does not
// inject a different fault than meant.
func (f *Fault) UnmarshalJSON(data []byte) error {
	type plain Fault
	var aux struct {
		plain
		Delay json.RawMessage `json:"Delay,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("zimtest: Fault: %w", err)
	}
	*f = Fault(aux.plain)
	f.Delay = 0
	raw := strings.TrimSpace(string(aux.Delay))
	switch {
	case raw == "" || raw == "null":
	case strings.HasPrefix(raw, `"`):
		var s string
		if err := json.Unmarshal(aux.Delay, &s); err != nil {
			return fmt.Errorf("zimtest: Fault.Delay: %w", err)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("zimtest: Fault.Delay: %w", err)
		}
		f.Delay = d
	default:
		ms, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("zimtest: Fault.Delay %s is neither a duration string nor milliseconds", raw)
		}
		f.Delay = time.Duration(ms * float64(time.Millisecond))
	}
	return nil
}

// pendingFault is an injected fault and how many calls it still answers.
type pendingFault struct {
	f    Fault
	left int
}

// Inject queues a fault. Faults are tried in the order injected; the first one
// that matches a request serves it and counts one of its Times. It panics if
// the fault is malformed (negative Times or Delay, HTTPStatus outside
// 100..599, or nothing to do).
func (s *Server) Inject(f Fault) {
	if err := f.validate(); err != nil {
		panic(err.Error())
	}
	s.inject(f)
}

func (s *Server) inject(f Fault) {
	left := f.Times
	if left == 0 {
		left = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &pendingFault{f: f, left: left})
}

// takeFault returns the first fault matching a request, counting one use.
func (s *Server) takeFault(action, convID string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.faults {
		if (p.f.Action != "" && p.f.Action != action) || (p.f.ConvID != "" && p.f.ConvID != convID) {
			continue
		}
		p.left--
		if p.left == 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return p.f, true
	}
	return Fault{}, false
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
