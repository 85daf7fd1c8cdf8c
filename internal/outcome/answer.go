package outcome

import "github.com/zim-deleteconv/zim-deleteconv/pkg/zim"

// SuccessBody is the answer for a deleted or already-deleted conversation.
type SuccessBody struct {
	Code      int     `json:"Code"`
	Message   string  `json:"Message"`
	RequestID string  `json:"RequestId"`
	Outcome   Outcome `json:"Outcome"`
}

// NewSuccessBody is the success answer for outcome o and ZEGO's answer resp (nil if none was made).
func NewSuccessBody(o Outcome, resp *zim.Response) SuccessBody {
	b := SuccessBody{Outcome: o}
	if resp != nil {
		b.Code, b.Message, b.RequestID = resp.Code, resp.Message, resp.RequestID
	}
	return b
}

// ErrorBody is the contract's error object.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of the contract's error object.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	ZegoCode  int    `json:"zegoCode,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}
