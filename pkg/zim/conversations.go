package zim

import (
	"context"
	"encoding/json"
	"fmt"
)

// DeleteConversation removes req.ConvID from req.FromUserID's server-side
// conversation list (ZEGO's DeleteConv).
//
// The request is validated first; a *ValidationError means nothing was sent. A
// non-zero Code is an *APIError: 660800002 matches ErrConversationNotFound, which
// callers deleting idempotently treat as success. The *Response is non-nil
// whenever a request was sent, also together with an error.
func (c *Client) DeleteConversation(ctx context.Context, req DeleteConvRequest) (*Response, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("zim: DeleteConv: encoding the request: %w", err)
	}
	resp, _, err := c.do(ctx, "DeleteConv", body)
	return resp, err
}

// QueryConversationList returns one page of fromUserID's conversations (ZEGO's
// QueryConversationList; it covers the user's latest 1000). limit is the page
// size, in (0, MaxConversationListLimit]; next is 0 for the first page and then
// the previous page's Next, until that is 0.
//
// The result is non-nil whenever a request was sent, also together with an
// error; its Response then describes the attempts.
func (c *Client) QueryConversationList(ctx context.Context, fromUserID string, limit int, next int64) (*ConversationList, error) {
	if err := ValidateID("FromUserId", fromUserID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxConversationListLimit {
		return nil, &ValidationError{Field: "Limit", Rule: "must be between 1 and 500"}
	}
	if next < 0 {
		return nil, &ValidationError{Field: "Next", Rule: "must not be negative"}
	}
	body, err := json.Marshal(struct {
		FromUserID string `json:"FromUserId"`
		Limit      int    `json:"Limit"`
		Next       int64  `json:"Next"`
	}{fromUserID, limit, next})
	if err != nil {
		return nil, fmt.Errorf("zim: QueryConversationList: encoding the request: %w", err)
	}
	const action = "QueryConversationList"
	resp, raw, err := c.do(ctx, action, body)
	if resp == nil {
		return nil, err
	}
	list := &ConversationList{}
	if err == nil {
		if derr := json.Unmarshal(raw, list); derr != nil {
			err = &ResponseError{Action: action, HTTPStatus: resp.HTTPStatus, Snippet: snippet(raw)}
		}
	}
	list.Response = *resp
	return list, err
}
