package netem

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFaultProxy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault      Fault
		wantStatus int // 0: no answer
		wantType   string
		reachesAPI bool
	}{
		{fault: Pass, wantStatus: http.StatusOK, reachesAPI: true},
		{fault: Fail, wantStatus: http.StatusInternalServerError, wantType: "com.amazonaws.dynamodb.v20120810#InternalServerError"},
		{fault: Drop},
		{fault: Slow}, // held longer than the client waits
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			var reached atomic.Int64
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				_, _ = io.WriteString(w, `{"Item":{}}`)
			}))
			defer api.Close()
			p, err := ListenFaults(api.URL, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			p.Set(tt.fault)

			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+"/", strings.NewReader(`{}`))
			resp, err := http.DefaultClient.Do(req)
			status, errType := 0, ""
			if err == nil {
				var e struct {
					Type string `json:"__type"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				status, errType = resp.StatusCode, e.Type
			}
			if status != tt.wantStatus || errType != tt.wantType {
				t.Errorf("status %d, __type %q (err %v), want %d, %q", status, errType, err, tt.wantStatus, tt.wantType)
			}
			if tt.fault == Slow && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("slow: err %v, want the client's deadline", err)
			}
			if got := reached.Load() > 0; got != tt.reachesAPI {
				t.Errorf("the API saw the request: %v, want %v", got, tt.reachesAPI)
			}
			wantFaulted := 1
			if tt.fault == Pass {
				wantFaulted = 0
			}
			if p.Requests() != 1 || p.Faulted() != wantFaulted {
				t.Errorf("Requests %d, Faulted %d, want 1, %d", p.Requests(), p.Faulted(), wantFaulted)
			}
		})
	}
}

func TestFaultProxySwitchesBack(t *testing.T) {
	t.Parallel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	p, err := ListenFaults(api.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, f := range []Fault{Fail, Pass} {
		p.Set(f)
		resp, err := http.Post(p.URL(), "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[Fault]int{Fail: 500, Pass: 200}[f]; resp.StatusCode != want {
			t.Errorf("%v: status %d, want %d", f, resp.StatusCode, want)
		}
	}
}

func TestParseFault(t *testing.T) {
	t.Parallel()
	for _, f := range []Fault{Pass, Fail, Drop, Slow} {
		if got, err := ParseFault(f.String()); err != nil || got != f {
			t.Errorf("ParseFault(%q) = %v, %v", f, got, err)
		}
	}
	if _, err := ParseFault("flaky"); err == nil {
		t.Error("ParseFault(flaky): no error")
	}
}
