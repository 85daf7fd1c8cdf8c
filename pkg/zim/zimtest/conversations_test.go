package zimtest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestDeleteConvValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(0, 0))
	id32 := strings.Repeat("a", 32)
	id33 := strings.Repeat("a", 33)
	tests := []struct {
		name      string
		body      string
		wantCode  int
		wantField string // named in Message when the body is refused
	}{
		{"valid one-on-one", deleteBody("alice", "bob", 0), 660800002, ""},
		{"valid group", deleteBody("alice", "#team-7", 2), 660800002, ""},
		{"ids of 32 bytes", deleteBody(id32, id32, 0), 660800002, ""},
		{"ids with ZEGO's punctuation", deleteBody("u#1@x&y", "g+=?!", 2), 660800002, ""},
		{"unknown field ignored", `{"FromUserId":"alice","ConvId":"bob","ConvType":0,"Extra":[1]}`, 660800002, ""},
		{"not JSON", `FromUserId=alice`, 660000002, ""},
		{"empty body", ``, 660000002, ""},
		{"JSON null", `null`, 660000002, ""},
		{"JSON array", `[{"FromUserId":"alice","ConvId":"bob","ConvType":0}]`, 660000002, ""},
		{"trailing data", deleteBody("alice", "bob", 0) + `x`, 660000002, ""},
		{"FromUserId missing", `{"ConvId":"bob","ConvType":0}`, 660000002, "FromUserId"},
		{"FromUserId null", `{"FromUserId":null,"ConvId":"bob","ConvType":0}`, 660000002, "FromUserId"},
		{"FromUserId empty", deleteBody("", "bob", 0), 660000002, "FromUserId"},
		{"FromUserId 33 bytes", deleteBody(id33, "bob", 0), 660000002, "FromUserId"},
		{"FromUserId a number", `{"FromUserId":7,"ConvId":"bob","ConvType":0}`, 660000002, "FromUserId"},
		{"FromUserId in another case", `{"FromUserID":"alice","ConvId":"bob","ConvType":0}`, 660000002, "FromUserId"},
		{"ConvId missing", `{"FromUserId":"alice","ConvType":0}`, 660000002, "ConvId"},
		{"ConvId empty", deleteBody("alice", "", 0), 660000002, "ConvId"},
		{"ConvId 33 bytes", deleteBody("alice", id33, 0), 660000002, "ConvId"},
		{"ConvId 11 three-byte runes", deleteBody("alice", strings.Repeat("会", 11), 0), 660000002, "ConvId"},
		{"ConvType missing", `{"FromUserId":"alice","ConvId":"bob"}`, 660000002, "ConvType"},
		{"ConvType 1", deleteBody("alice", "bob", 1), 660000002, "ConvType"},
		{"ConvType -1", deleteBody("alice", "bob", -1), 660000002, "ConvType"},
		{"ConvType a string", `{"FromUserId":"alice","ConvId":"bob","ConvType":"0"}`, 660000002, "ConvType"},
		{"ConvType a fraction", `{"FromUserId":"alice","ConvId":"bob","ConvType":0.5}`, 660000002, "ConvType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := post(t, s.URL+"/", query("DeleteConv", appA, secretA, time.Now()), tt.body)
			if a.Code != tt.wantCode {
				t.Fatalf("Code = %d (%s), want %d", a.Code, a.Message, tt.wantCode)
			}
			if tt.wantField != "" && !strings.Contains(a.Message, tt.wantField) {
				t.Errorf("Message %q does not name %s", a.Message, tt.wantField)
			}
		})
	}
}

func TestDeleteConvStore(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithApp(appB, secretB), zimtest.WithRateLimit(0, 0))
	s.Seed(appA, "alice",
		zim.Conversation{ConvID: "bob", ConvType: zim.ConvTypePeer},
		zim.Conversation{ConvID: "bob", ConvType: zim.ConvTypeGroup},
		zim.Conversation{ConvID: "#team-7", ConvType: zim.ConvTypeGroup})
	s.Seed(appA, "carol", zim.Conversation{ConvID: "bob"})
	s.Seed(appB, "alice", zim.Conversation{ConvID: "bob"})

	steps := []struct {
		app          uint32
		secret       string
		from, conv   string
		typ          int
		wantCode     int
		wantAliceIDs []string // alice's conversations in appA afterwards, newest first, as "id/type"
	}{
		{appA, secretA, "alice", "bob", 0, 0, []string{"bob/2", "#team-7/2"}},
		{appA, secretA, "alice", "bob", 0, 660800002, []string{"bob/2", "#team-7/2"}},
		{appA, secretA, "alice", "#team-7", 0, 660800002, []string{"bob/2", "#team-7/2"}}, // wrong ConvType
		{appA, secretA, "alice", "#team-7", 2, 0, []string{"bob/2"}},
		{appA, secretA, "dave", "bob", 0, 660800002, []string{"bob/2"}}, // unknown user
		{appB, secretB, "alice", "bob", 0, 0, []string{"bob/2"}},        // another app's alice
		{appA, secretA, "alice", "bob", 2, 0, []string{}},
	}
	for i, st := range steps {
		a := post(t, s.URL+"/", query("DeleteConv", st.app, st.secret, time.Now()), deleteBody(st.from, st.conv, st.typ))
		if a.Code != st.wantCode {
			t.Fatalf("step %d: delete %s/%s/%d in %d: Code = %d, want %d", i, st.from, st.conv, st.typ, st.app, a.Code, st.wantCode)
		}
		if got := ids(s.Conversations(appA, "alice")); !slices.Equal(got, st.wantAliceIDs) {
			t.Fatalf("step %d: alice has %v, want %v", i, got, st.wantAliceIDs)
		}
	}
	if got := ids(s.Conversations(appA, "carol")); !slices.Equal(got, []string{"bob/0"}) {
		t.Errorf("carol's conversations changed: %v", got)
	}
	if got := s.Conversations(appB, "alice"); len(got) != 0 {
		t.Errorf("appB's alice still has %v", got)
	}
}

func ids(cs []zim.Conversation) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s/%d", c.ConvID, c.ConvType))
	}
	return out
}

func TestMissingConversationCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []zimtest.Option
		want int
	}{
		{"default", nil, 660800002},
		{"success", []zimtest.Option{zimtest.WithMissingConversationCode(0)}, 0},
		{"custom", []zimtest.Option{zimtest.WithMissingConversationCode(660000001)}, 660000001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, append([]zimtest.Option{zimtest.WithApp(appA, secretA)}, tt.opts...)...)
			s.Seed(appA, "alice", zim.Conversation{ConvID: "bob"})
			if a := post(t, s.URL+"/", query("DeleteConv", appA, secretA, time.Now()), deleteBody("alice", "bob", 0)); a.Code != 0 {
				t.Fatalf("existing conversation: Code = %d, want 0", a.Code)
			}
			if a := post(t, s.URL+"/", query("DeleteConv", appA, secretA, time.Now()), deleteBody("alice", "bob", 0)); a.Code != tt.want {
				t.Fatalf("missing conversation: Code = %d, want %d", a.Code, tt.want)
			}
		})
	}
}

func TestSeedUpdateTimes(t *testing.T) {
	t.Parallel()
	s := zimtest.NewUnstartedServer(zimtest.WithClock(fixed(t0)))
	s.Seed(appA, "alice",
		zim.Conversation{ConvID: "first"},
		zim.Conversation{ConvID: "dated", UpdateTime: 1708254395000},
		zim.Conversation{ConvID: "third"})
	s.Seed(appA, "alice", zim.Conversation{ConvID: "later"}) // same clock: ties go to the later call
	got := s.Conversations(appA, "alice")
	want := []zim.Conversation{
		{ConvID: "later", UpdateTime: t0.UnixMilli()},
		{ConvID: "first", UpdateTime: t0.UnixMilli()},
		{ConvID: "third", UpdateTime: t0.UnixMilli() - 2},
		{ConvID: "dated", UpdateTime: 1708254395000},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Conversations = %v, want %v", got, want)
	}
	// Seeding the same conversation again replaces it.
	s.Seed(appA, "alice", zim.Conversation{ConvID: "dated", UpdateTime: 1})
	if got := s.Conversations(appA, "alice"); len(got) != 4 || got[3] != (zim.Conversation{ConvID: "dated", UpdateTime: 1}) {
		t.Fatalf("after re-seeding: %v", got)
	}
}

// seedN gives user n conversations with UpdateTime 1..n (ConvId "c<UpdateTime>");
// every third is a group.
func seedN(s *zimtest.Server, user string, n int) {
	convs := make([]zim.Conversation, n)
	for i := range convs {
		typ := zim.ConvTypePeer
		if i%3 == 2 {
			typ = zim.ConvTypeGroup
		}
		convs[i] = zim.Conversation{ConvID: fmt.Sprintf("c%d", i+1), ConvType: typ, UpdateTime: int64(i + 1)}
	}
	s.Seed(appA, user, convs...)
}

// listAll pages through QueryConversationList and returns every answer.
func listAll(t *testing.T, s *zimtest.Server, user string, limit int) []answer {
	t.Helper()
	var pages []answer
	next := int64(0)
	for {
		a := post(t, s.URL+"/", query("QueryConversationList", appA, secretA, time.Now()),
			fmt.Sprintf(`{"FromUserId":%q,"Limit":%d,"Next":%d}`, user, limit, next))
		if a.Code != 0 {
			t.Fatalf("Code = %d (%s)", a.Code, a.Message)
		}
		pages = append(pages, a)
		if a.Next == 0 {
			return pages
		}
		if len(pages) > 100 {
			t.Fatal("Next never becomes 0")
		}
		next = a.Next
	}
}

func TestQueryConversationListPaging(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(0, 0))
	seedN(s, "alice", 250)

	pages := listAll(t, s, "alice", 100)
	var sizes []int
	var times []int64
	for _, p := range pages {
		sizes = append(sizes, len(p.List))
		if p.TotalCount != 250 {
			t.Errorf("TotalCount = %d, want 250", p.TotalCount)
		}
		for _, c := range p.List {
			times = append(times, c.UpdateTime)
			if want := fmt.Sprintf("c%d", c.UpdateTime); c.ConvID != want {
				t.Errorf("item %s has UpdateTime %d", c.ConvID, c.UpdateTime)
			}
			isGroup := (c.UpdateTime-1)%3 == 2
			switch {
			case isGroup && (c.ConvType == nil || *c.ConvType != 2):
				t.Errorf("group %s: ConvType %v, want 2", c.ConvID, c.ConvType)
			case !isGroup && c.ConvType != nil:
				t.Errorf("one-on-one %s: ConvType present (%d), want it left out as ZEGO does", c.ConvID, *c.ConvType)
			}
		}
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("page sizes %v, want [100 100 50]", sizes)
	}
	if len(times) != 250 || !slices.IsSorted(times) || times[0] != 1 || times[249] != 250 {
		t.Errorf("UpdateTimes across pages are not 1..250 ascending: %v", times)
	}
}

func TestQueryConversationListBody(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(0, 0))
	seedN(s, "alice", 600)
	tests := []struct {
		name      string
		body      string
		wantCode  int
		wantItems int
		wantNext  int64
	}{
		{"Limit 10", `{"FromUserId":"alice","Limit":10}`, 0, 10, 10},
		{"Limit 500", `{"FromUserId":"alice","Limit":500}`, 0, 500, 500},
		{"Limit missing becomes 100", `{"FromUserId":"alice"}`, 0, 100, 100},
		{"Limit 0 becomes 100", `{"FromUserId":"alice","Limit":0}`, 0, 100, 100},
		{"Limit -5 becomes 100", `{"FromUserId":"alice","Limit":-5}`, 0, 100, 100},
		{"Limit 501 becomes 500", `{"FromUserId":"alice","Limit":501}`, 0, 500, 500},
		{"last page", `{"FromUserId":"alice","Limit":100,"Next":550}`, 0, 50, 0},
		{"Next past the end", `{"FromUserId":"alice","Limit":100,"Next":5000}`, 0, 0, 0},
		{"unknown user", `{"FromUserId":"nobody"}`, 0, 0, 0},
		{"Next negative", `{"FromUserId":"alice","Next":-1}`, 660000002, 0, 0},
		{"Limit a string", `{"FromUserId":"alice","Limit":"10"}`, 660000002, 0, 0},
		{"FromUserId missing", `{"Limit":10}`, 660000002, 0, 0},
		{"FromUserId 33 bytes", `{"FromUserId":"` + strings.Repeat("u", 33) + `"}`, 660000002, 0, 0},
		{"not JSON", `alice`, 660000002, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := post(t, s.URL+"/", query("QueryConversationList", appA, secretA, time.Now()), tt.body)
			if a.Code != tt.wantCode || len(a.List) != tt.wantItems || a.Next != tt.wantNext {
				t.Fatalf("Code %d, %d items, Next %d; want Code %d, %d items, Next %d (%s)",
					a.Code, len(a.List), a.Next, tt.wantCode, tt.wantItems, tt.wantNext, a.Message)
			}
			if tt.wantCode == 0 && !strings.Contains(string(a.Raw), `"List":[`) {
				t.Errorf("List is not an array: %s", a.Raw)
			}
		})
	}
}

func TestOnlyTheLatest1000AreVisible(t *testing.T) {
	t.Parallel()
	s := newServer(t, zimtest.WithApp(appA, secretA), zimtest.WithRateLimit(0, 0))
	seedN(s, "alice", 1205) // c1 (oldest) .. c1205 (newest)

	listed := func() []int64 {
		var times []int64
		for _, p := range listAll(t, s, "alice", 500) {
			if p.TotalCount != len(s.Conversations(appA, "alice")) {
				t.Errorf("TotalCount = %d, want every conversation (%d)", p.TotalCount, len(s.Conversations(appA, "alice")))
			}
			for _, c := range p.List {
				times = append(times, c.UpdateTime)
			}
		}
		return times
	}
	times := listed()
	if len(times) != 1000 || times[0] != 206 || times[999] != 1205 {
		t.Fatalf("listed %d conversations from %d to %d, want the latest 1000 (206..1205)", len(times), times[0], times[len(times)-1])
	}

	del := func(conv string, typ int) int {
		return post(t, s.URL+"/", query("DeleteConv", appA, secretA, time.Now()), deleteBody("alice", conv, typ)).Code
	}
	// c205 is the newest invisible one: ZEGO does not see it.
	if code := del("c205", 0); code != 660800002 {
		t.Fatalf("deleting an invisible conversation: Code = %d, want 660800002", code)
	}
	if len(s.Conversations(appA, "alice")) != 1205 {
		t.Fatal("an invisible conversation was deleted")
	}
	// Deleting a visible one brings c205 into view.
	if code := del("c1205", 0); code != 0 {
		t.Fatalf("deleting a visible conversation: Code = %d, want 0", code)
	}
	if code := del("c205", 0); code != 0 {
		t.Fatalf("c205 after it came into view: Code = %d, want 0", code)
	}
	times = listed()
	if len(times) != 1000 || times[0] != 204 || times[999] != 1204 || slices.Contains(times, 205) {
		t.Fatalf("after deletes: %d listed from %d to %d", len(times), times[0], times[len(times)-1])
	}
}
