package zimtest

import (
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
