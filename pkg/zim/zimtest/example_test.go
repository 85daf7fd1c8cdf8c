package zimtest_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// exampleDelete sends a DeleteConv request signed by hand, as ZEGO specifies,
// and returns the answer's Code and Message (or the HTTP status, when the
// answer is not ZEGO's envelope).
func exampleDelete(baseURL string, appID uint32, secret, from, conv string, typ zim.ConvType) string {
	nonce, ts := "4fd24687296dd9f3", time.Now().Unix()
	sum := md5.Sum([]byte(fmt.Sprintf("%d%s%s%d", appID, nonce, secret, ts)))
	q := url.Values{
		"Action": {"DeleteConv"}, "AppId": {strconv.FormatUint(uint64(appID), 10)},
		"SignatureNonce": {nonce}, "Timestamp": {strconv.FormatInt(ts, 10)},
		"SignatureVersion": {"2.0"}, "Signature": {hex.EncodeToString(sum[:])},
	}
	body, _ := json.Marshal(zim.DeleteConvRequest{FromUserID: from, ConvID: conv, ConvType: typ})
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(baseURL+"/?"+q.Encode(), "application/json", strings.NewReader(string(body)))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var answer struct {
		Code    int
		Message string
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return resp.Status
	}
	return fmt.Sprintf("%d %s", answer.Code, answer.Message)
}

func ExampleNewServer() {
	const appID = 1234567890
	const secret = "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15"
	s := zimtest.NewServer(zimtest.WithApp(appID, secret))
	defer s.Close()
	s.Seed(appID, "alice",
		zim.Conversation{ConvID: "bob", ConvType: zim.ConvTypePeer},
		zim.Conversation{ConvID: "#team-7", ConvType: zim.ConvTypeGroup})

	fmt.Println(exampleDelete(s.URL, appID, secret, "alice", "bob", zim.ConvTypePeer))
	fmt.Println(exampleDelete(s.URL, appID, secret, "alice", "bob", zim.ConvTypePeer))
	fmt.Println(exampleDelete(s.URL, appID, "wrong-secret", "alice", "#team-7", zim.ConvTypeGroup))
	for _, c := range s.Conversations(appID, "alice") {
		fmt.Println("left:", c.ConvID)
	}
	for _, r := range s.Requests() {
		fmt.Println(r.Action, r.ConvID, r.SignatureValid, r.Code)
	}
	// Output:
	// 0 success
	// 660800002 conversation does not exist
	// 100000005 signature error
	// left: #team-7
	// DeleteConv bob true 0
	// DeleteConv bob true 660800002
	// DeleteConv #team-7 false 100000005
}

func ExampleServer_Inject() {
	const appID = 1234567890
	const secret = "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15"
	s := zimtest.NewServer(zimtest.WithApp(appID, secret), zimtest.WithMissingConversationCode(0))
	defer s.Close()
	// The next two DeleteConv calls for "bob" are rate limited.
	s.Inject(zimtest.Fault{Action: "DeleteConv", ConvID: "bob", Code: 7, Times: 2})

	for range 3 {
		fmt.Println(exampleDelete(s.URL, appID, secret, "alice", "bob", zim.ConvTypePeer))
	}
	// Output:
	// 7 the number of requests per second exceeds the system setting value
	// 7 the number of requests per second exceeds the system setting value
	// 0 success
}

func ExampleAdminClient() {
	// In end-to-end tests the server runs as cmd/zimserver; here it is in-process.
	s := zimtest.NewServer()
	defer s.Close()
	ctx := context.Background()
	admin := zimtest.NewAdminClient(s.URL)

	_ = admin.SetSecret(ctx, 1234567890, "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15")
	_ = admin.Seed(ctx, 1234567890, "alice", zim.Conversation{ConvID: "bob"})
	_ = admin.Inject(ctx, zimtest.Fault{HTTPStatus: http.StatusServiceUnavailable})

	fmt.Println(exampleDelete(s.URL, 1234567890, "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15", "alice", "bob", zim.ConvTypePeer))
	fmt.Println(exampleDelete(s.URL, 1234567890, "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15", "alice", "bob", zim.ConvTypePeer))
	convs, _ := admin.Conversations(ctx, 1234567890, "alice")
	fmt.Println(len(convs), "conversations left")
	// Output:
	// 503 Service Unavailable
	// 0 success
	// 0 conversations left
}
