package zim

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestQueryConversationList(t *testing.T) {
	t.Parallel()
	page := `{"Code":0,"Message":"success","RequestId":"r-7","TotalCount":3,"Next":1700000000123,
		"List":[{"ConvId":"bob","ConvType":0,"UpdateTime":1700000000001},
		        {"ConvId":"#team","ConvType":2,"UpdateTime":1700000000002},
		        {"ConvId":"carol","UpdateTime":1700000000003}]}`
	fake := newFake(answer{body: page})
	c := newTestClient(t, serve(t, fake))

	list, err := c.QueryConversationList(t.Context(), "alice", 100, 42)
	if err != nil {
		t.Fatalf("QueryConversationList: %v", err)
	}
	want := []Conversation{
		{ConvID: "bob", ConvType: ConvTypePeer, UpdateTime: 1700000000001},
		{ConvID: "#team", ConvType: ConvTypeGroup, UpdateTime: 1700000000002},
		{ConvID: "carol", ConvType: ConvTypePeer, UpdateTime: 1700000000003}, // ConvType absent: one-on-one
	}
	if list.TotalCount != 3 || list.Next != 1700000000123 || !reflect.DeepEqual(list.List, want) {
		t.Errorf("list = %+v", list)
	}
	if list.Code != 0 || list.RequestID != "r-7" || list.Attempts != 1 || list.HTTPStatus != 200 {
		t.Errorf("envelope = %+v", list.Response)
	}

	reqs := fake.requests()
	if len(reqs) != 1 || reqs[0].query.Get("Action") != "QueryConversationList" || reqs[0].path != testPrefix+"/" {
		t.Fatalf("requests = %+v", reqs)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(reqs[0].body), &body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(body, map[string]any{"FromUserId": "alice", "Limit": 100.0, "Next": 42.0}) {
		t.Errorf("body = %s", reqs[0].body)
	}
}

func TestQueryConversationListErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		user     string
		limit    int
		next     int64
		answer   answer
		field    string // ValidationError field; nothing sent
		want     error
		attempts int
	}{
		{name: "empty user", user: "", limit: 10, field: "FromUserId"},
		{name: "zero limit", user: "alice", limit: 0, field: "Limit"},
		{name: "limit over 500", user: "alice", limit: 501, field: "Limit"},
		{name: "negative cursor", user: "alice", limit: 10, next: -1, field: "Next"},
		{name: "largest page", user: "alice", limit: 500, answer: code(0), attempts: 1},
		{name: "user not found", user: "ghost", limit: 10, answer: code(660500002), want: ErrUserNotFound, attempts: 1},
		{name: "List of the wrong type", user: "alice", limit: 10, answer: answer{body: `{"Code":0,"List":"none"}`}, want: ErrBadResponse, attempts: 1},
		{name: "retried", user: "alice", limit: 10, answer: code(7), want: ErrRateLimited, attempts: noWait.MaxAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := newFake(tt.answer)
			c := newTestClient(t, serve(t, fake))
			list, err := c.QueryConversationList(t.Context(), tt.user, tt.limit, tt.next)
			if tt.field != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != tt.field || list != nil || len(fake.requests()) != 0 {
					t.Errorf("got %v, %v with %d requests; want a %s validation error and nothing sent", list, err, len(fake.requests()), tt.field)
				}
				return
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if list == nil || list.Attempts != tt.attempts {
				t.Errorf("list = %+v, want %d attempts", list, tt.attempts)
			}
			var re *ResponseError
			if errors.As(err, &re) && (re.Action != "QueryConversationList" || re.HTTPStatus != 200) {
				t.Errorf("ResponseError = %+v", re)
			}
		})
	}
}
