package zimtest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestAdminClient(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithMissingConversationCode(0))
	// Mounted under a prefix, as in a larger test server.
	mux := http.NewServeMux()
	mux.Handle("/zim/", s)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	bases := []struct {
		name, base string
		app        uint32
	}{
		{"direct", s.URL, 4242},
		{"prefix", ts.URL + "/zim", 4343},
		{"prefix with slash", ts.URL + "/zim/", 4444},
	}
	for _, b := range bases {
		name, base, app := b.name, b.base, b.app
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			c := zimtest.NewAdminClient(base)
			api := strings.TrimSuffix(base, "/") + "/"
			secret := "adminsecret-" + strings.ReplaceAll(name, " ", "-")

			if a := post(t, api, query("QueryConversationList", app, secret, time.Now()), `{"FromUserId":"alice"}`); a.Code != 100000011 {
				t.Fatalf("before SetSecret: Code = %d, want 100000011", a.Code)
			}
			if err := c.SetSecret(ctx, app, secret); err != nil {
				t.Fatal(err)
			}
			user := "u-" + strings.ReplaceAll(name, " ", "-")
			if err := c.Seed(ctx, app, user,
				zim.Conversation{ConvID: "bob"},
				zim.Conversation{ConvID: "#team-7", ConvType: zim.ConvTypeGroup, UpdateTime: 5}); err != nil {
				t.Fatal(err)
			}
			convs, err := c.Conversations(ctx, app, user)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(convs); !slices.Equal(got, []string{"bob/0", "#team-7/2"}) || convs[1].UpdateTime != 5 {
				t.Fatalf("Conversations = %v", convs)
			}
			if err := c.ResetRequests(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Inject(ctx, zimtest.Fault{Action: "DeleteConv", ConvID: "#team-7", Code: 7, Delay: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			if a := post(t, api, query("DeleteConv", app, secret, time.Now()), deleteBody(user, "#team-7", 2)); a.Code != 7 {
				t.Fatalf("faulted delete: Code = %d, want 7", a.Code)
			}
			if a := post(t, api, query("DeleteConv", app, secret, time.Now()), deleteBody(user, "#team-7", 2)); a.Code != 0 {
				t.Fatalf("delete: Code = %d, want 0", a.Code)
			}
			reqs, err := c.Requests(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var mine []zimtest.Request
			for _, r := range reqs {
				if r.AppID == app {
					mine = append(mine, r)
				}
			}
			if len(mine) != 2 || mine[0].Code != 7 || mine[0].Fault == "" || mine[1].Code != 0 ||
				string(mine[1].Body) != deleteBody(user, "#team-7", 2) || !mine[1].SignatureValid {
				t.Fatalf("Requests = %v", mine)
			}
			convs, err = c.Conversations(ctx, app, user)
			if err != nil || !slices.Equal(ids(convs), []string{"bob/0"}) {
				t.Fatalf("after delete: %v, %v", convs, err)
			}
		})
	}
}

func TestAdminClientErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c := zimtest.NewAdminClient(s.URL)
	ctx := t.Context()
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{"fault that does nothing", func() error { return c.Inject(ctx, zimtest.Fault{Times: 2}) }, "does nothing"},
		{"fault with a bad status", func() error { return c.Inject(ctx, zimtest.Fault{HTTPStatus: 1000}) }, "HTTP 400"},
		{"secret empty", func() error { return c.SetSecret(ctx, 1, "") }, "required"},
		{"secret for AppId 0", func() error { return c.SetSecret(ctx, 0, "s") }, "required"},
		{"seed with an empty ConvId", func() error { return c.Seed(ctx, 1, "alice", zim.Conversation{}) }, "ConvId"},
		{"seed with ConvType 1", func() error { return c.Seed(ctx, 1, "alice", zim.Conversation{ConvID: "b", ConvType: 1}) }, "ConvType"},
		{"seed for an empty user", func() error { return c.Seed(ctx, 1, "", zim.Conversation{ConvID: "b"}) }, "FromUserId"},
		{"unreachable server", func() error { return zimtest.NewAdminClient("http://127.0.0.1:1").ResetRequests(ctx) }, "requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if len(s.Conversations(1, "alice")) != 0 {
		t.Error("a refused seed was applied")
	}
}

func TestAdminHTTP(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tests := []struct {
		method, path, body string
		wantStatus         int
		wantAllow          string
		wantBody           string
	}{
		{http.MethodGet, "/_zimtest/requests", "", http.StatusOK, "", "[]"},
		{http.MethodPost, "/_zimtest/requests", "", http.StatusMethodNotAllowed, "GET, DELETE", `"error"`},
		{http.MethodGet, "/_zimtest/faults", "", http.StatusMethodNotAllowed, "POST", `"error"`},
		{http.MethodPost, "/_zimtest/faults", `{"Code":7,"Delay":"2s"}`, http.StatusNoContent, "", ""},
		{http.MethodPost, "/_zimtest/faults", `{"Code":7,"Delay":250}`, http.StatusNoContent, "", ""},
		{http.MethodPost, "/_zimtest/faults", `{"Code":7,"Delay":"2 s"}`, http.StatusBadRequest, "", "Delay"},
		{http.MethodPost, "/_zimtest/faults", `{"Code":7} {}`, http.StatusBadRequest, "", "after"},
		{http.MethodPost, "/_zimtest/secret", `{"AppId":1,"ServerSecret":"s","Extra":1}`, http.StatusBadRequest, "", "Extra"},
		{http.MethodPost, "/_zimtest/seed", `{"apps":[]}`, http.StatusNoContent, "", ""},
		{http.MethodGet, "/_zimtest/conversations?AppId=1", "", http.StatusBadRequest, "", "FromUserId"},
		{http.MethodGet, "/_zimtest/conversations?AppId=x&FromUserId=a", "", http.StatusBadRequest, "", "AppId"},
		{http.MethodGet, "/_zimtest/conversations?AppId=1&FromUserId=nobody", "", http.StatusOK, "", "[]"},
		{http.MethodGet, "/_zimtest/nothing", "", http.StatusNotFound, "", "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.body, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := testClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Allow") != tt.wantAllow || !strings.Contains(string(raw), tt.wantBody) {
				t.Fatalf("HTTP %d Allow %q body %s; want %d Allow %q body with %q",
					resp.StatusCode, resp.Header.Get("Allow"), raw, tt.wantStatus, tt.wantAllow, tt.wantBody)
			}
		})
	}
}
