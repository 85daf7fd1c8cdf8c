package handler

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestSecretHygieneMixedWorkload runs every trigger through successes,
// faults, invalid input, a rotation and a failed rotation with debug logging
// on, then scans every log line, metric line, answer and error for either
// ServerSecret and for every signature ZEGO received.
func TestSecretHygieneMixedWorkload(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	for i := range 20 {
		hs.seed("alice", peer(fmt.Sprintf("c%02d", i)))
	}
	hs.seed("erin", peer("x"), group("#y"))
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "c01", Code: 1})
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "c02", HTTPStatus: http.StatusInternalServerError, Body: "upstream exploded"})
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "c03", Drop: true, Times: 3})
	hs.srv.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "c04", Code: 660500002})

	for i := range 6 {
		_, _ = hs.invoke([]byte(body("alice", fmt.Sprintf("c%02d", i), 0)), 5*time.Second)
	}
	_, _ = hs.invoke([]byte(`{"FromUserId":"alice","ConvId":"`+strings.Repeat("z", 40)+`","ConvType":0}`), time.Second) // too long: refused
	_, _ = hs.invoke(httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "c06", 0)}), 5*time.Second)
	_, _ = hs.invoke(restEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: b64(body("alice", "c07", 0)), b64: true}), 5*time.Second)
	_, _ = hs.invoke(sqsEvent(t,
		sqsRecord{id: "1", body: body("alice", "c08", 0)},
		sqsRecord{id: "2", body: "not json"},
		sqsRecord{id: "3", body: `{"FromUserId":"erin","AllConversations":true}`},
	), 5*time.Second)

	// Rotation: ZEGO and the secret change together; then ZEGO changes alone.
	hs.srv.SetSecret(testAppID, rotatedKey)
	hs.creds.next = &zim.Credentials{AppID: testAppID, ServerSecret: rotatedKey}
	_, _ = hs.invoke([]byte(body("alice", "c09", 0)), 5*time.Second)
	hs.srv.SetSecret(testAppID, testSecret)
	_, err := hs.invoke([]byte(body("alice", "c10", 0)), 5*time.Second)
	if ie := functionError(t, err); ie.Type != "ConfigurationError" {
		t.Fatalf("after a rotation ZEGO does not share: %+v", ie)
	}

	signed := 0
	for _, r := range hs.srv.Requests() {
		if r.Nonce != "" {
			signed++
		}
	}
	if signed < 15 || !strings.Contains(hs.logs.String(), `"level":"DEBUG"`) {
		t.Fatalf("the workload did not exercise enough (%d signed requests) or debug logging was off", signed)
	}
	// assertNoSecrets runs at cleanup over everything captured here.
}
