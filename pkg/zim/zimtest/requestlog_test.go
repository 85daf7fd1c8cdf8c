package zimtest_test

import (
	"encoding/json"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestRequestLogRecordsWhatWasSentAndAnswered(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithClock(fixed(t0)))
	s.Seed(appA, "alice", testConv("bob"))

	q := query("DeleteConv", appA, secretA, t0)
	body := deleteBody("alice", "bob", 0)
	first := post(t, s.URL+"/", q, body)
	second := post(t, s.URL+"/", query("DeleteConv", appA, secretB, t0), deleteBody("alice", "#g", 2))

	got := s.Requests()
	want := []zimtest.Request{
		{
			Time: t0, Method: http.MethodPost, Action: "DeleteConv", AppID: appA,
			Nonce: q.Get("SignatureNonce"), Timestamp: t0.Unix(), SignatureVersion: "2.0", SignatureValid: true,
			FromUserID: "alice", ConvID: "bob", ConvType: zim.ConvTypePeer, Body: []byte(body),
			Code: 0, RequestID: first.RequestID, HTTPStatus: http.StatusOK,
		},
		{
			Action: "DeleteConv", AppID: appA, SignatureValid: false,
			FromUserID: "alice", ConvID: "#g", ConvType: zim.ConvTypeGroup,
			Code: 100000005, RequestID: second.RequestID, HTTPStatus: http.StatusOK,
		},
	}
	if len(got) != 2 {
		t.Fatalf("logged %d requests, want 2", len(got))
	}
	if g := got[0]; !g.Time.Equal(want[0].Time) || g.Method != want[0].Method || g.Action != want[0].Action ||
		g.AppID != want[0].AppID || g.Nonce != want[0].Nonce || g.Timestamp != want[0].Timestamp ||
		g.SignatureVersion != want[0].SignatureVersion || g.SignatureValid != want[0].SignatureValid ||
		g.FromUserID != want[0].FromUserID || g.ConvID != want[0].ConvID || g.ConvType != want[0].ConvType ||
		string(g.Body) != string(want[0].Body) || g.Code != want[0].Code || g.RequestID != want[0].RequestID ||
		g.HTTPStatus != want[0].HTTPStatus || g.Fault != "" {
		t.Errorf("first request logged as\n%#v\nwant\n%#v", g, want[0])
	}
	if g := got[1]; g.SignatureValid || g.Code != want[1].Code || g.RequestID != want[1].RequestID ||
		g.ConvID != want[1].ConvID || g.ConvType != want[1].ConvType {
		t.Errorf("second request logged as %v", g)
	}

	// Requests returns copies.
	got[0].Body[0] = 'X'
	if s.Requests()[0].Body[0] == 'X' {
		t.Error("Requests shares its Body with the log")
	}

	s.ResetRequests()
	if n := len(s.Requests()); n != 0 {
		t.Fatalf("after ResetRequests: %d requests", n)
	}
	post(t, s.URL+"/", query("DeleteConv", appA, secretA, t0), body)
	if n := len(s.Requests()); n != 1 {
		t.Fatalf("after one more request: %d requests, want 1", n)
	}
}

func TestRequestLogMalformedParameters(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA))
	q := url.Values{"Action": {"DeleteConv"}, "AppId": {"x12"}, "Timestamp": {"soon"}, "SignatureNonce": {"n"}}
	a := post(t, s.URL+"/", q, `{"ConvId":7}`)
	r := logged(t, s, a.RequestID)
	if r.AppID != 0 || r.Timestamp != 0 || r.Nonce != "n" || r.ConvID != "" || r.SignatureValid || r.Code != 100000001 {
		t.Fatalf("logged %#v", r)
	}
}

func TestRequestLogIsInArrivalOrder(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := zimtest.NewUnstartedServer(zimtest.WithApp(appA, secretA), zimtest.WithMissingConversationCode(0))
		s.Inject(zimtest.Fault{ConvID: "slow", Delay: time.Second})
		_, slowDone := serveAsync(t.Context(), s, "slow")
		synctest.Wait()
		serve(t, s, query("DeleteConv", appA, secretA, time.Now()), deleteBody("alice", "fast", 0))

		if log := s.Requests(); len(log) != 1 || log[0].ConvID != "fast" {
			t.Fatalf("while slow is pending: %v, want only fast", log)
		}
		time.Sleep(time.Second)
		<-slowDone
		log := s.Requests()
		if len(log) != 2 || log[0].ConvID != "slow" || log[1].ConvID != "fast" {
			t.Fatalf("log %v, want slow then fast (arrival order)", log)
		}
		// A reset keeps the requests still being answered.
		s.Inject(zimtest.Fault{ConvID: "slow", Delay: time.Second})
		_, slowDone = serveAsync(t.Context(), s, "slow")
		synctest.Wait()
		s.ResetRequests()
		time.Sleep(time.Second)
		<-slowDone
		if log := s.Requests(); len(log) != 1 || log[0].ConvID != "slow" {
			t.Fatalf("after a reset during a pending request: %v, want the pending one", log)
		}
	})
}

func TestRequestLogNeverHoldsSecretsOrSignatures(t *testing.T) {
	t.Parallel()
	var logs testutil.Buffer
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	var signatures []string
	for _, secret := range []string{secretA, secretB} {
		q := query("DeleteConv", appA, secret, time.Now())
		signatures = append(signatures, q.Get("Signature"))
		post(t, s.URL+"/", q, deleteBody("alice", "bob", 0))
	}
	data, err := json.Marshal(s.Requests())
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, r := range s.Requests() {
		text.WriteString(r.String() + "\n")
	}
	for name, out := range map[string]string{"JSON": string(data), "String": text.String(), "slog": logs.String()} {
		if out == "" {
			t.Errorf("%s output is empty", name)
		}
		for _, secret := range append([]string{secretA, secretB}, signatures...) {
			if strings.Contains(out, secret) {
				t.Errorf("%s output holds a secret or signature", name)
			}
		}
	}
	if !strings.Contains(logs.String(), `"code":100000005`) || !strings.Contains(logs.String(), `"app_id":`+strconv.Itoa(int(appA))) {
		t.Errorf("slog output lacks the request's code or app: %s", logs.String())
	}
}
