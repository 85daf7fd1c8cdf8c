package zim

import (
	"context"
	"time"
)

// ConvType is the kind of conversation, as ZEGO numbers it.
type ConvType int

const (
	// ConvTypePeer is a one-on-one conversation; ConvID is the other user's id.
	ConvTypePeer ConvType = 0
	// ConvTypeGroup is a group conversation; ConvID is the group id.
	ConvTypeGroup ConvType = 2
)

// MaxIDBytes is the longest user, conversation or group id ZEGO accepts, in bytes.
const MaxIDBytes = 32

// DeleteConvRequest is the body of ZEGO's DeleteConv API: remove ConvID from
// FromUserID's server-side conversation list.
type DeleteConvRequest struct {
	FromUserID string   `json:"FromUserId"`
	ConvID     string   `json:"ConvId"`
	ConvType   ConvType `json:"ConvType"`
}

// Response is the envelope every ZEGO answer carries, plus what the client
// observed while getting it.
//
// Endpoint methods return a non-nil *Response whenever at least one attempt was
// made, also together with an error: Attempts then counts the attempts and
// Code/Message/RequestID hold the last answer ZEGO gave (zero when none came).
// Message (here and in *APIError) is cut to its first 256 bytes, at a rune
// boundary, so that it cannot grow a caller's logs and answers without bound.
type Response struct {
	Code      int    `json:"Code"`
	Message   string `json:"Message"`
	RequestID string `json:"RequestId"`

	// Attempts is how many HTTP requests the call made (1 when no retry happened).
	Attempts int `json:"-"`
	// HTTPStatus is the status of the last HTTP answer (0 when none came).
	HTTPStatus int `json:"-"`
	// Latency is the total time the call took, waits and retries included.
	Latency time.Duration `json:"-"`
}

// Conversation is one entry of QueryConversationList's answer.
type Conversation struct {
	ConvID     string   `json:"ConvId"`
	ConvType   ConvType `json:"ConvType"`
	UpdateTime int64    `json:"UpdateTime"`
}

// ConversationList is QueryConversationList's answer. Next is the cursor for
// the following page; 0 means there is none.
type ConversationList struct {
	Response
	TotalCount int            `json:"TotalCount"`
	Next       int64          `json:"Next"`
	List       []Conversation `json:"List"`
}

// MaxConversationListLimit is the largest page QueryConversationList serves.
const MaxConversationListLimit = 500

// Credentials are what signs a request: the AppID and its ServerSecret.
type Credentials struct {
	AppID        uint32
	ServerSecret string
}

// CredentialsSource supplies credentials on every attempt, so a rotated secret
// is picked up without building a new Client.
//
// Credentials returns the credentials to use now. Refresh is called at most
// once per API call, when ZEGO answered "invalid signature" (100000005) to
// stale: it should fetch anew unless the credentials it holds already differ
// from stale (another caller refreshed meanwhile), and return what to retry with.
// Errors from either method end the call; they are returned wrapped, so callers
// can inspect them with errors.Is and errors.As.
type CredentialsSource interface {
	Credentials(ctx context.Context) (Credentials, error)
	Refresh(ctx context.Context, stale Credentials) (Credentials, error)
}

// StaticCredentials is a CredentialsSource that never changes:
//
//	zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: serverSecret})
type StaticCredentials Credentials

// Credentials returns c.
func (c StaticCredentials) Credentials(context.Context) (Credentials, error) {
	return Credentials(c), nil
}

// Refresh returns c: a static source has nothing newer.
func (c StaticCredentials) Refresh(context.Context, Credentials) (Credentials, error) {
	return Credentials(c), nil
}

// staticCredentials returns the credentials of a StaticCredentials source, so
// that New can refuse malformed ones before any call.
func staticCredentials(src CredentialsSource) (Credentials, bool) {
	switch sc := src.(type) {
	case StaticCredentials:
		return Credentials(sc), true
	case *StaticCredentials:
		if sc == nil {
			return Credentials{}, true
		}
		return Credentials(*sc), true
	}
	return Credentials{}, false
}
