package zimtest_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// devSeed is the local stack's seed.
const devSeed = "../../../dev/zim-seed.json"

func TestLoadSeedDevFile(t *testing.T) {
	t.Parallel()
	f, err := os.Open(devSeed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newServer(t)
	if err := s.LoadSeed(f); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"alice": {"bob/0", "#team-7/2"},
		"carol": {"alice/0", "#team-7/2"},
		"dave":  {"alice/0"},
	}
	for user, convs := range want {
		if got := ids(s.Conversations(appA, user)); !slices.Equal(got, convs) {
			t.Errorf("%s: %v, want %v", user, got, convs)
		}
	}
	// The seeded app answers with the seeded secret.
	a := post(t, s.URL+"/", query("DeleteConv", appA, secretA, time.Now()), deleteBody("alice", "#team-7", 2))
	if a.Code != 0 {
		t.Fatalf("DeleteConv with the seed's app: Code = %d (%s), want 0", a.Code, a.Message)
	}
	if got := ids(s.Conversations(appA, "alice")); !slices.Equal(got, []string{"bob/0"}) {
		t.Errorf("alice after delete: %v", got)
	}
}

func TestLoadSeedRotatesSecrets(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, "old-secret-000000000000000000000"))
	if err := s.LoadSeed(strings.NewReader(`{"apps":[{"AppId":1234567890,"ServerSecret":"` + secretA + `"}]}`)); err != nil {
		t.Fatal(err)
	}
	if a := post(t, s.URL+"/", query("QueryConversationList", appA, "old-secret-000000000000000000000", time.Now()), `{"FromUserId":"a"}`); a.Code != 100000005 {
		t.Errorf("old secret: Code = %d, want 100000005", a.Code)
	}
	if a := post(t, s.URL+"/", query("QueryConversationList", appA, secretA, time.Now()), `{"FromUserId":"a"}`); a.Code != 0 {
		t.Errorf("new secret: Code = %d, want 0", a.Code)
	}
}

func TestLoadSeedRefusesBadSeeds(t *testing.T) {
	t.Parallel()
	const secret = "do-not-print-this-secret-0000000"
	app := `{"AppId":7,"ServerSecret":"` + secret + `"}`
	tests := []struct {
		name, seed, wantErr string
	}{
		{"not JSON", `apps: []`, "invalid character"},
		{"unknown field", `{"apps":[` + app + `],"users":[]}`, `"users"`},
		{"unknown field in an app", `{"apps":[{"AppId":7,"ServerSecret":"` + secret + `","Region":"x"}]}`, `"Region"`},
		{"trailing data", `{"apps":[` + app + `]} {}`, "after"},
		{"AppId 0", `{"apps":[{"AppId":0,"ServerSecret":"` + secret + `"}]}`, "apps[0].AppId"},
		{"AppId a string", `{"apps":[{"AppId":"7","ServerSecret":"` + secret + `"}]}`, "AppId"},
		{"secret empty", `{"apps":[` + app + `,{"AppId":8,"ServerSecret":""}]}`, "apps[1].ServerSecret"},
		{"conversation AppId 0", `{"apps":[` + app + `],"conversations":[{"AppId":0,"FromUserId":"a","List":[]}]}`, "conversations[0].AppId"},
		{"FromUserId empty", `{"apps":[` + app + `],"conversations":[{"AppId":7,"FromUserId":"","List":[]}]}`, "conversations[0].FromUserId"},
		{"ConvId too long", `{"apps":[` + app + `],"conversations":[{"AppId":7,"FromUserId":"a","List":[{"ConvId":"` + strings.Repeat("c", 33) + `"}]}]}`, "conversations[0].List[0].ConvId"},
		{"ConvType 1", `{"apps":[` + app + `],"conversations":[{"AppId":7,"FromUserId":"a","List":[{"ConvId":"b"},{"ConvId":"c","ConvType":1}]}]}`, "conversations[0].List[1].ConvType"},
		{"UpdateTime negative", `{"apps":[` + app + `],"conversations":[{"AppId":7,"FromUserId":"a","List":[{"ConvId":"b","UpdateTime":-1}]}]}`, "UpdateTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := zimtest.NewUnstartedServer()
			err := s.LoadSeed(strings.NewReader(tt.seed))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatal("the error shows the secret")
			}
			// Nothing is applied: the app of the seed is still unknown.
			if a := serve(t, s, query("QueryConversationList", 7, secret, time.Now()), `{"FromUserId":"a"}`); a.Code != 100000011 {
				t.Fatalf("after a refused seed: Code = %d, want 100000011", a.Code)
			}
			if len(s.Conversations(7, "a")) != 0 {
				t.Fatal("after a refused seed, conversations were stored")
			}
		})
	}
}
