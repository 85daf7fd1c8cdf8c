package zimtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

func TestSignatureMatchesZEGOVector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		appID         uint32
		nonce, secret string
		ts            int64
		want          string
	}{
		// ZEGO's published example.
		{12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943, "43e5cfcca828314675f91b001390566a"},
		// md5("1234567890" + "0123456789abcdef" + "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15" + "1741435200"), computed with md5sum.
		{1234567890, "0123456789abcdef", "5f2c0a9e7b3d4c1f8a6e2b9d0c7f3a15", 1741435200, "0d1dbfb78b1d417f7ea9b7003941c9e1"},
	}
	for _, tt := range tests {
		if got := signature(tt.appID, tt.nonce, tt.secret, tt.ts); got != tt.want {
			t.Errorf("signature(%d, %s, …, %d) = %s, want %s", tt.appID, tt.nonce, tt.ts, got, tt.want)
		}
	}
}

func TestDecodeDeleteConvNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body      string
		wantField string
	}{
		{`{"ConvId":"b","ConvType":0}`, "FromUserId"},
		{`{"FromUserId":"a","ConvType":0}`, "ConvId"},
		{`{"FromUserId":"a","ConvId":"b"}`, "ConvType"},
		{`[]`, ""},
	}
	for _, tt := range tests {
		_, err := decodeDeleteConv([]byte(tt.body))
		var be *bodyError
		if !errors.As(err, &be) || be.field != tt.wantField {
			t.Errorf("%s: error %v, want one for field %q", tt.body, err, tt.wantField)
		}
	}
}

// FuzzDecodeDeleteConv checks that any body either is refused or yields a
// request within ZEGO's rules that survives a round trip through JSON, and
// that the log's lenient peek agrees with the decoder.
func FuzzDecodeDeleteConv(f *testing.F) {
	for _, s := range []string{
		`{"FromUserId":"alice","ConvId":"bob","ConvType":0}`,
		`{"FromUserId":"alice","ConvId":"#team-7","ConvType":2}`,
		`{"FromUserId":"","ConvId":"bob","ConvType":0}`,
		`{"FromUserId":"a","ConvId":"b","ConvType":1}`,
		`{"FromUserId":"a","ConvId":"b","ConvType":"0"}`,
		`{"fromuserid":"a","ConvId":"b","ConvType":0}`,
		`{"FromUserId":"a","FromUserId":"b","ConvId":"c","ConvType":2}`,
		`{"FromUserId":"\u00e9\u00e9","ConvId":"\ud800","ConvType":0}`,
		`null`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dc, err := decodeDeleteConv(body)
		if err != nil {
			var be *bodyError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *bodyError", err)
			}
			return
		}
		for name, id := range map[string]string{"FromUserId": dc.FromUserID, "ConvId": dc.ConvID} {
			if id == "" || len(id) > zim.MaxIDBytes {
				t.Fatalf("accepted %s of %d bytes", name, len(id))
			}
		}
		if dc.ConvType != zim.ConvTypePeer && dc.ConvType != zim.ConvTypeGroup {
			t.Fatalf("accepted ConvType %d", dc.ConvType)
		}
		again, err := json.Marshal(dc)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeDeleteConv(again)
		if err != nil || back != dc {
			t.Fatalf("round trip of %+v through %s: %+v, %v", dc, again, back, err)
		}
		if from, conv, typ := peek(body); from != dc.FromUserID || conv != dc.ConvID || typ != dc.ConvType {
			t.Fatalf("peek = %q %q %d, decode = %+v", from, conv, typ, dc)
		}
	})
}

// FuzzDecodeListQuery checks that an accepted QueryConversationList body has
// been corrected into ZEGO's ranges.
func FuzzDecodeListQuery(f *testing.F) {
	for _, s := range []string{
		`{"FromUserId":"alice","Limit":100,"Next":0}`,
		`{"FromUserId":"alice","Limit":-1,"Next":250}`,
		`{"FromUserId":"alice","Limit":99999999999999999999}`,
		`{"FromUserId":"alice","Next":-5}`,
		`{"FromUserId":"alice","Limit":1.5}`,
		`{"Limit":10}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		lq, err := decodeListQuery(body)
		if err != nil {
			return
		}
		if lq.FromUserID == "" || len(lq.FromUserID) > zim.MaxIDBytes || lq.Limit < 1 || lq.Limit > maxListLimit || lq.Next < 0 {
			t.Fatalf("accepted %+v", lq)
		}
	})
}

// FuzzLoadSeed checks that a seed is either refused with nothing applied, or
// applied with only valid conversations.
func FuzzLoadSeed(f *testing.F) {
	for _, s := range []string{
		`{"apps":[{"AppId":1,"ServerSecret":"s"}],"conversations":[{"AppId":1,"FromUserId":"a","List":[{"ConvId":"b","ConvType":2}]}]}`,
		`{"apps":[],"conversations":[{"AppId":1,"FromUserId":"a","List":[{"ConvId":"","ConvType":0}]}]}`,
		`{"apps":[{"AppId":1,"ServerSecret":""}]}`,
		`{"apps":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, seed []byte) {
		s := NewUnstartedServer()
		err := s.LoadSeed(bytes.NewReader(seed))
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			if len(s.apps) != 0 || len(s.store.users) != 0 {
				t.Fatalf("a refused seed was applied: %v", err)
			}
			return
		}
		for appID, secret := range s.apps {
			if appID == 0 || secret == "" {
				t.Fatalf("applied app %d with a secret of %d bytes", appID, len(secret))
			}
		}
		for k, convs := range s.store.users {
			if k.appID == 0 || checkID(k.user) != nil {
				t.Fatalf("stored a conversation list for %+v", k)
			}
			for ck, c := range convs {
				if checkID(ck.id) != nil || (ck.typ != zim.ConvTypePeer && ck.typ != zim.ConvTypeGroup) || c.conv.UpdateTime < 0 {
					t.Fatalf("stored %+v", c.conv)
				}
			}
		}
	})
}
