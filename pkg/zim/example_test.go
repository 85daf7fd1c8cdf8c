package zim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

const (
	appID  uint32 = 1234567890
	secret        = "00112233445566778899aabbccddeeff"
)

// fakeZEGO stands in for ZEGO's API under /zim/: it checks the signature, deletes
// alice's conversation with bob once, and pages through alice's conversations.
func fakeZEGO() *httptest.Server {
	convs := []string{"bob", "carol", "dave"}
	deleted := map[string]bool{}
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("POST /zim/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		q := r.URL.Query()
		ts, _ := strconv.ParseInt(q.Get("Timestamp"), 10, 64)
		reply := map[string]any{"Code": 0, "Message": "success", "RequestId": "343649807833778782"}
		var body struct {
			ConvID string `json:"ConvId"`
			Limit  int
			Next   int
		}
		json.NewDecoder(r.Body).Decode(&body)
		switch {
		case q.Get("Signature") != zim.Sign(appID, q.Get("SignatureNonce"), secret, ts):
			reply["Code"], reply["Message"] = 100000005, "signature error"
		case q.Get("Action") == "DeleteConv" && deleted[body.ConvID]:
			reply["Code"], reply["Message"] = 660800002, "conversation not exist"
		case q.Get("Action") == "DeleteConv":
			deleted[body.ConvID] = true
		case q.Get("Action") == "QueryConversationList":
			end := min(body.Next+body.Limit, len(convs))
			var list []map[string]any
			for _, id := range convs[body.Next:end] {
				list = append(list, map[string]any{"ConvId": id, "UpdateTime": 1700000000000})
			}
			if end == len(convs) {
				end = 0
			}
			reply["TotalCount"], reply["Next"], reply["List"] = len(convs), end, list
		}
		json.NewEncoder(w).Encode(reply)
	})
	return httptest.NewServer(mux)
}

func ExampleSign() {
	// ZEGO's published example.
	fmt.Println(zim.Sign(12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943))
	// Output: 43e5cfcca828314675f91b001390566a
}

func ExampleNew() {
	// Fixed credentials; a CredentialsSource that fetches them (and refreshes on
	// ZEGO's "invalid signature") goes in the same place.
	c, err := zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: secret},
		zim.WithBaseURL("https://zim-api-fra.zego.im"),
		zim.WithRateLimit(10), // this process's share of ZEGO's 20/s per AppId
	)
	fmt.Println(c != nil, err)

	_, err = zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: "not-a-secret"})
	fmt.Println(err)
	// Output:
	// true <nil>
	// ServerSecret must be 32 hexadecimal characters
}

func ExampleClient_DeleteConversation() {
	srv := fakeZEGO()
	defer srv.Close()
	c, err := zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: secret}, zim.WithBaseURL(srv.URL+"/zim"))
	if err != nil {
		fmt.Println(err)
		return
	}

	req := zim.DeleteConvRequest{FromUserID: "alice", ConvID: "bob", ConvType: zim.ConvTypePeer}
	for range 2 {
		resp, err := c.DeleteConversation(context.Background(), req)
		switch {
		case err == nil:
			fmt.Println("deleted, RequestId", resp.RequestID)
		case errors.Is(err, zim.ErrConversationNotFound):
			// Deleting is idempotent: gone is gone.
			fmt.Println("already deleted, Code", resp.Code)
		default:
			fmt.Println("failed:", err, "retry later:", zim.Retryable(err))
		}
	}
	// Output:
	// deleted, RequestId 343649807833778782
	// already deleted, Code 660800002
}

func ExampleClient_QueryConversationList() {
	srv := fakeZEGO()
	defer srv.Close()
	c, err := zim.New(zim.StaticCredentials{AppID: appID, ServerSecret: secret}, zim.WithBaseURL(srv.URL+"/zim"))
	if err != nil {
		fmt.Println(err)
		return
	}

	// Pass each page's Next to the following call until it is 0.
	var next int64
	for {
		page, err := c.QueryConversationList(context.Background(), "alice", 2, next)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, conv := range page.List {
			fmt.Println(conv.ConvID, conv.ConvType)
		}
		if next = page.Next; next == 0 {
			break
		}
	}
	// Output:
	// bob 0
	// carol 0
	// dave 0
}

func ExampleDeleteConvRequest_Validate() {
	err := zim.DeleteConvRequest{FromUserID: "alice", ConvID: "#team", ConvType: 1}.Validate()
	var ve *zim.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Field, "-", ve.Rule)
	}
	// Output: ConvType - must be 0 (one-on-one) or 2 (group)
}

func ExampleValidateBaseURL() {
	for _, u := range []string{"https://zim-api-sgp.zego.im", "http://127.0.0.1:8080/zim", "http://zim-api.zego.im"} {
		fmt.Println(u, zim.ValidateBaseURL(u))
	}
	// Output:
	// https://zim-api-sgp.zego.im <nil>
	// http://127.0.0.1:8080/zim <nil>
	// http://zim-api.zego.im BaseURL must use https (http is allowed only for a loopback host)
}
