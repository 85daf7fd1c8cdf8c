package zimtest

import (
	"cmp"
	"slices"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// visibleConversations is how many of a user's latest conversations ZEGO's
// conversation APIs see: QueryConversationList lists only these, and DeleteConv
// answers "does not exist" for the older ones.
const visibleConversations = 1000

type userKey struct {
	appID uint32
	user  string
}

type convKey struct {
	id  string
	typ zim.ConvType
}

// storedConv is a conversation plus its insertion sequence, which breaks ties
// between equal UpdateTimes (a higher seq is newer).
type storedConv struct {
	conv zim.Conversation
	seq  uint64
}

// store holds every user's conversations. The Server's mutex guards it.
type store struct {
	users map[userKey]map[convKey]storedConv
	seq   uint64
}

func newStore() store { return store{users: make(map[userKey]map[convKey]storedConv)} }

// newerFirst orders conversations newest first.
func newerFirst(a, b storedConv) int {
	if c := cmp.Compare(b.conv.UpdateTime, a.conv.UpdateTime); c != 0 {
		return c
	}
	return cmp.Compare(b.seq, a.seq)
}

// put adds or replaces conversations. Those given earlier in convs count as
// newer when their UpdateTimes are equal.
func (st *store) put(k userKey, convs []zim.Conversation) {
	m := st.users[k]
	if m == nil {
		m = make(map[convKey]storedConv)
		st.users[k] = m
	}
	for i := len(convs) - 1; i >= 0; i-- {
		st.seq++
		c := convs[i]
		m[convKey{c.ConvID, c.ConvType}] = storedConv{conv: c, seq: st.seq}
	}
}

// sorted returns all of a user's conversations, newest first.
func (st *store) sorted(k userKey) []storedConv {
	m := st.users[k]
	out := make([]storedConv, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, newerFirst)
	return out
}

// delete removes a conversation if it is among the user's visible ones and
// reports whether it did.
func (st *store) delete(k userKey, ck convKey) bool {
	m := st.users[k]
	c, ok := m[ck]
	if !ok {
		return false
	}
	newer := 0
	for _, o := range m {
		if newerFirst(o, c) < 0 {
			newer++
		}
	}
	if newer >= visibleConversations {
		return false
	}
	delete(m, ck)
	if len(m) == 0 {
		delete(st.users, k)
	}
	return true
}

// Seed stores conversations of fromUserID in appID, replacing any with the same
// ConvID and ConvType. A zero UpdateTime becomes the server's clock in Unix
// milliseconds, minus the conversation's index in convs, so that convs given
// without times list newest first in the order given. Seed does not validate
// what it stores (LoadSeed does).
func (s *Server) Seed(appID uint32, fromUserID string, convs ...zim.Conversation) {
	now := s.now().UnixMilli()
	cs := slices.Clone(convs)
	for i := range cs {
		if cs[i].UpdateTime == 0 {
			cs[i].UpdateTime = now - int64(i)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.put(userKey{appID, fromUserID}, cs)
}

// Conversations returns all conversations of fromUserID in appID, newest first,
// including those beyond the latest 1000 that the API does not show.
func (s *Server) Conversations(appID uint32, fromUserID string) []zim.Conversation {
	s.mu.Lock()
	defer s.mu.Unlock()
	sorted := s.store.sorted(userKey{appID, fromUserID})
	out := make([]zim.Conversation, len(sorted))
	for i, c := range sorted {
		out[i] = c.conv
	}
	return out
}
