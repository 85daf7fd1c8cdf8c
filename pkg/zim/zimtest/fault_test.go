package zimtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// probe sends a DeleteConv for alice's conversation conv and summarises what
// came back: "dropped", "HTTP 200 code 7" or `HTTP 503 text "..."`.
func probe(t *testing.T, s *zimtest.Server, conv string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		s.URL+"/?"+query("DeleteConv", appA, secretA, time.Now()).Encode(), strings.NewReader(deleteBody("alice", conv, 0)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return "dropped"
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "dropped"
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		a := decodeAnswer(t, resp.StatusCode, "", raw)
		return fmt.Sprintf("HTTP %d code %d", resp.StatusCode, a.Code)
	}
	return fmt.Sprintf("HTTP %d text %q", resp.StatusCode, raw)
}

func TestFaultKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault zimtest.Fault
		want  []string // three calls in a row
	}{
		{"code 7 twice", zimtest.Fault{Code: 7, Times: 2},
			[]string{"HTTP 200 code 7", "HTTP 200 code 7", "HTTP 200 code 0"}},
		{"code 1", zimtest.Fault{Code: 1},
			[]string{"HTTP 200 code 1", "HTTP 200 code 0", "HTTP 200 code 0"}},
		{"code 660000001 with HTTP 500", zimtest.Fault{HTTPStatus: 500, Code: 660000001},
			[]string{"HTTP 500 code 660000001", "HTTP 200 code 0", "HTTP 200 code 0"}},
		{"code 660300005 three times", zimtest.Fault{Code: 660300005, Times: 3},
			[]string{"HTTP 200 code 660300005", "HTTP 200 code 660300005", "HTTP 200 code 660300005"}},
		{"HTTP 503 alone", zimtest.Fault{HTTPStatus: 503},
			[]string{`HTTP 503 text "503 Service Unavailable\n"`, "HTTP 200 code 0", "HTTP 200 code 0"}},
		{"non-JSON body with 502", zimtest.Fault{HTTPStatus: 502, Body: "<html>Bad Gateway</html>", Times: 2},
			[]string{`HTTP 502 text "<html>Bad Gateway</html>"`, `HTTP 502 text "<html>Bad Gateway</html>"`, "HTTP 200 code 0"}},
		{"non-JSON body with 200", zimtest.Fault{Body: "ok"},
			[]string{`HTTP 200 text "ok"`, "HTTP 200 code 0", "HTTP 200 code 0"}},
		{"drop", zimtest.Fault{Drop: true},
			[]string{"dropped", "HTTP 200 code 0", "HTTP 200 code 0"}},
		{"drop twice", zimtest.Fault{Drop: true, Times: 2},
			[]string{"dropped", "dropped", "HTTP 200 code 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithMissingConversationCode(0))
			s.Inject(tt.fault)
			var got []string
			for range tt.want {
				got = append(got, probe(t, s, "bob"))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("answers:\n got %q\nwant %q", got, tt.want)
			}
			log := s.Requests()
			if len(log) != len(tt.want) {
				t.Fatalf("logged %d requests, want %d", len(log), len(tt.want))
			}
			for i, r := range log {
				faulted := tt.want[i] != "HTTP 200 code 0"
				if (r.Fault != "") != faulted {
					t.Errorf("request %d: Fault = %q, want faulted=%t", i, r.Fault, faulted)
				}
				if tt.want[i] == "dropped" && r.HTTPStatus != 0 {
					t.Errorf("request %d was dropped but logged HTTP %d", i, r.HTTPStatus)
				}
			}
		})
	}
}

func TestFaultTargeting(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithMissingConversationCode(0), zimtest.WithRateLimit(0, 0))
	s.Inject(zimtest.Fault{ConvID: "bob", Code: 1, Times: 2})
	s.Inject(zimtest.Fault{Action: "QueryConversationList", Code: 7})
	s.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "carol", Code: 660000001})
	s.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "carol", Code: 660300006})

	list := func() string {
		a := post(t, s.URL+"/", query("QueryConversationList", appA, secretA, time.Now()), `{"FromUserId":"alice"}`)
		return fmt.Sprintf("HTTP %d code %d", a.Status, a.Code)
	}
	steps := []struct {
		call func() string
		want string
	}{
		{func() string { return probe(t, s, "dave") }, "HTTP 200 code 0"},
		{list, "HTTP 200 code 7"},
		{list, "HTTP 200 code 0"},
		{func() string { return probe(t, s, "bob") }, "HTTP 200 code 1"},
		{func() string { return probe(t, s, "dave") }, "HTTP 200 code 0"},
		{func() string { return probe(t, s, "bob") }, "HTTP 200 code 1"},
		{func() string { return probe(t, s, "bob") }, "HTTP 200 code 0"},
		// Two faults match: the one injected first serves first.
		{func() string { return probe(t, s, "carol") }, "HTTP 200 code 660000001"},
		{func() string { return probe(t, s, "carol") }, "HTTP 200 code 660300006"},
		{func() string { return probe(t, s, "carol") }, "HTTP 200 code 0"},
	}
	for i, st := range steps {
		if got := st.call(); got != st.want {
			t.Fatalf("step %d: %s, want %s", i, got, st.want)
		}
	}
}

func TestFaultFiresBeforeTheChecks(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA))
	s.Inject(zimtest.Fault{Code: 1})
	a := post(t, s.URL+"/", query("DeleteConv", appA, secretB, time.Now()), deleteBody("alice", "bob", 0))
	if a.Code != 1 {
		t.Fatalf("Code = %d, want the fault's 1", a.Code)
	}
	if r := logged(t, s, a.RequestID); r.SignatureValid || r.Fault == "" {
		t.Fatalf("logged %v, want an invalid signature answered by the fault", r)
	}
	a = post(t, s.URL+"/", query("DeleteConv", appA, secretB, time.Now()), deleteBody("alice", "bob", 0))
	if a.Code != 100000005 {
		t.Fatalf("after the fault: Code = %d, want 100000005", a.Code)
	}
}

func TestFaultedRequestsCountTowardTheWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(2, time.Second),
			zimtest.WithMissingConversationCode(0))
		s.Inject(zimtest.Fault{Code: 1, Times: 3})
		codes := burst(t, s, appA, secretB, 1) // badly signed: faulted, not counted
		codes = append(codes, burst(t, s, appA, secretA, 3)...)
		if want := []int{1, 1, 1, 660300005}; !slices.Equal(codes, want) {
			t.Fatalf("codes %v, want %v", codes, want)
		}
		time.Sleep(time.Second)
		if codes := burst(t, s, appA, secretA, 3); !slices.Equal(codes, []int{0, 0, 660300005}) {
			t.Fatalf("after the window: %v, want [0 0 660300005]", codes)
		}
	})
}

// serveAsync runs one DeleteConv through the handler in a goroutine.
func serveAsync(ctx context.Context, s *zimtest.Server, conv string) (*httptest.ResponseRecorder, <-chan struct{}) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost,
		"/?"+query("DeleteConv", appA, secretA, time.Now()).Encode(), strings.NewReader(deleteBody("alice", conv, 0)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeHTTP(rec, req)
	}()
	return rec, done
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFaultDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     zimtest.Fault
		wantCode  int
		wantGone  bool // the conversation was deleted (the normal answer was served)
		wantFault bool
	}{
		{"delay then code 7", zimtest.Fault{Delay: 2 * time.Second, Code: 7}, 7, false, true},
		{"delay alone delays the normal answer", zimtest.Fault{Delay: 2 * time.Second}, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA))
				s.Seed(appA, "alice", testConv("bob"))
				s.Inject(tt.fault)
				rec, done := serveAsync(t.Context(), s, "bob")
				time.Sleep(tt.fault.Delay - time.Nanosecond)
				synctest.Wait()
				if isDone(done) {
					t.Fatal("answered before the delay ended")
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				if !isDone(done) {
					t.Fatal("not answered when the delay ended")
				}
				a := decodeAnswer(t, rec.Code, "", rec.Body.Bytes())
				if a.Code != tt.wantCode {
					t.Errorf("Code = %d, want %d", a.Code, tt.wantCode)
				}
				if gone := len(s.Conversations(appA, "alice")) == 0; gone != tt.wantGone {
					t.Errorf("conversation deleted = %t, want %t", gone, tt.wantGone)
				}
				if r := logged(t, s, a.RequestID); (r.Fault != "") != tt.wantFault {
					t.Errorf("logged Fault %q", r.Fault)
				}
			})
		})
	}
}

func TestFaultDelayEndsEarly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, s *zimtest.Server)
	}{
		{"client gives up", func(cancel context.CancelFunc, _ *zimtest.Server) { cancel() }},
		{"server closes", func(_ context.CancelFunc, s *zimtest.Server) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA))
				s.Seed(appA, "alice", testConv("bob"))
				s.Inject(zimtest.Fault{Delay: time.Hour})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				_, done := serveAsync(ctx, s, "bob")
				time.Sleep(time.Minute)
				tt.stop(cancel, s)
				synctest.Wait()
				if !isDone(done) {
					t.Fatal("the handler still waits")
				}
				log := s.Requests()
				if len(log) != 1 || log[0].HTTPStatus != 0 || log[0].Fault == "" || log[0].RequestID != "" {
					t.Fatalf("log %v, want one abandoned faulted request", log)
				}
				if len(s.Conversations(appA, "alice")) != 1 {
					t.Error("an abandoned request deleted the conversation")
				}
			})
		})
	}
}

func TestInjectRefusesMalformedFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault zimtest.Fault
	}{
		{"nothing to do", zimtest.Fault{Action: "DeleteConv", Times: 3}},
		{"negative Times", zimtest.Fault{Code: 1, Times: -1}},
		{"negative Delay", zimtest.Fault{Delay: -time.Second}},
		{"HTTPStatus 42", zimtest.Fault{HTTPStatus: 42}},
		{"HTTPStatus 600", zimtest.Fault{HTTPStatus: 600, Code: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := zimtest.NewUnstartedServer()
			defer func() {
				if recover() == nil {
					t.Fatal("Inject did not panic")
				}
			}()
			s.Inject(tt.fault)
		})
	}
}

func TestFaultJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    zimtest.Fault
		wantErr bool
	}{
		{`{"Action":"DeleteConv","ConvId":"bob","Times":2,"Code":7}`, zimtest.Fault{Action: "DeleteConv", ConvID: "bob", Times: 2, Code: 7}, false},
		{`{"Delay":"250ms","HTTPStatus":503}`, zimtest.Fault{Delay: 250 * time.Millisecond, HTTPStatus: 503}, false},
		{`{"Delay":"1.5s","Drop":true}`, zimtest.Fault{Delay: 1500 * time.Millisecond, Drop: true}, false},
		{`{"Delay":250,"Body":"x"}`, zimtest.Fault{Delay: 250 * time.Millisecond, Body: "x"}, false},
		{`{"Delay":0.5,"Code":1}`, zimtest.Fault{Delay: 500 * time.Microsecond, Code: 1}, false},
		{`{"Delay":null,"Code":1}`, zimtest.Fault{Code: 1}, false},
		{`{"Delay":"soon","Code":1}`, zimtest.Fault{}, true},
		{`{"Delay":true,"Code":1}`, zimtest.Fault{}, true},
		{`{"Cod":7}`, zimtest.Fault{}, true},
		{`{"Code":"7"}`, zimtest.Fault{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var f zimtest.Fault
			err := json.Unmarshal([]byte(tt.in), &f)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if f != tt.want {
				t.Fatalf("decoded %+v, want %+v", f, tt.want)
			}
			// Round trip: Delay is written as a duration string.
			data, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			var back zimtest.Fault
			if err := json.Unmarshal(data, &back); err != nil || back != f {
				t.Fatalf("round trip through %s: %+v, %v", data, back, err)
			}
			if f.Delay != 0 && !strings.Contains(string(data), `"Delay":"`+f.Delay.String()+`"`) {
				t.Errorf("Delay not written as a duration string: %s", data)
			}
		})
	}
}

func TestFaultString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    zimtest.Fault
		want string
	}{
		{zimtest.Fault{Code: 7}, "any action: HTTP 200 code 7"},
		{zimtest.Fault{Action: "DeleteConv", ConvID: "bob", Drop: true, Delay: time.Second}, `DeleteConv ConvId="bob": delay 1s drop`},
		{zimtest.Fault{HTTPStatus: 503}, "any action: HTTP 503"},
		{zimtest.Fault{Body: "<html>"}, `any action: HTTP 200 body "<html>"`},
		{zimtest.Fault{Delay: 5 * time.Millisecond}, "any action: delay 5ms"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
