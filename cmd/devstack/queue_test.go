package main

import (
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

func TestJobRate(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	del := func(ms int, user string, code int) zimtest.Request {
		return zimtest.Request{Time: t0.Add(time.Duration(ms) * time.Millisecond), Action: "DeleteConv", FromUserID: user, Code: code, HTTPStatus: 200}
	}
	var reqs []zimtest.Request
	// 21 deletions 100 ms apart: 10/s over 2 s; the first second (-1 s, 0.9 s] holds 10 of them and 3 other calls.
	for i := range 21 {
		reqs = append(reqs, del(100*i, "bot", 0))
	}
	reqs = append(reqs,
		del(50, "bot", 660300005), // refused: not a deletion, but a call
		del(60, "other", 0),       // another user's
		zimtest.Request{Time: t0, Action: "QueryConversationList", FromUserID: "bot"},
	)
	tests := []struct {
		reqs []zimtest.Request
		want []string
	}{
		{reqs, []string{"10.0 deletions/s", "(2s)", "50% of ZEGO's 20/s", "budget 20/s", "most ZEGO calls in one second: 13"}},
		{reqs[:1], []string{"1 deletion(s), too few for a rate"}},
	}
	for _, tt := range tests {
		got := jobRate(tt.reqs, "bot", 20)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("jobRate = %q, want it to contain %q", got, w)
			}
		}
	}
}
