package zimtest

// Return codes the server answers. The common-parameter codes follow ZEGO's
// "Return codes" page; doc.go says which check answers which.
const (
	codeSuccess              = 0
	codeAppIDFormat          = 100000001 // AppId missing or not a positive 32-bit decimal
	codeTimestampEmpty       = 100000002
	codeTimestampFormat      = 100000003
	codeSignatureExpired     = 100000004
	codeSignatureInvalid     = 100000005
	codeActionEmpty          = 100000006
	codeActionUnsupported    = 100000007
	codeNonceInvalid         = 100000008 // ZEGO: SignatureNonce empty; also used here for a malformed one
	codeSignatureEmpty       = 100000009
	codeNoAppConfig          = 100000011
	codeBodyUnreadable       = 100000012
	codeVersionEmpty         = 100000013
	codeVersionUnsupported   = 100000014
	codeInvalidParameter     = 660000002
	codeAppIDRateLimited     = 660300005
	codeConversationNotFound = 660800002
)

// messages are the Message texts of the codes above (and of those faults commonly use).
var messages = map[int]string{
	codeSuccess:              "success",
	1:                        "server busy, please try again later",
	2:                        "input parameter error",
	3:                        "authentication failed",
	7:                        "the number of requests per second exceeds the system setting value",
	codeAppIDFormat:          "AppId field format error",
	codeTimestampEmpty:       "Timestamp field is empty",
	codeTimestampFormat:      "Timestamp field format error",
	codeSignatureExpired:     "signature expired",
	codeSignatureInvalid:     "signature error",
	codeActionEmpty:          "Action is empty",
	codeActionUnsupported:    "unsupported Action",
	codeNonceInvalid:         "SignatureNonce field is empty or malformed",
	codeSignatureEmpty:       "Signature field is empty",
	100000010:                "get ServerSecret failed",
	codeNoAppConfig:          "get App configuration failed",
	codeBodyUnreadable:       "get request body failed",
	codeVersionEmpty:         "SignatureVersion is empty",
	codeVersionUnsupported:   "unsupported SignatureVersion",
	100000015:                "API gateway internal error",
	660000001:                "general business error",
	codeInvalidParameter:     "input parameter error",
	660000003:                "logic processing error",
	codeAppIDRateLimited:     "the API call frequency exceeds the AppID-level limit",
	660300006:                "the API call frequency exceeds the group-level limit",
	codeConversationNotFound: "conversation does not exist",
}

// messageFor returns the Message text of code.
func messageFor(code int) string {
	if m, ok := messages[code]; ok {
		return m
	}
	return "error"
}
