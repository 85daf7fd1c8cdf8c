package zim

import (
	"bytes"
	"regexp"
	"testing"
)

func TestSign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		appID     uint32
		nonce     string
		secret    string
		timestamp int64
		want      string
	}{
		{
			// ZEGO's published example from its signing sample.
			name: "ZEGO vector", appID: 12345, nonce: "4fd24687296dd9f3",
			secret: "9193cc662a4c0ec135ec71fb57194b38", timestamp: 1615186943,
			want: "43e5cfcca828314675f91b001390566a",
		},
		{
			// printf %s 1234567890 0123456789abcdef 00112233445566778899aabbccddeeff 1700000000 | md5sum
			name: "own vector", appID: 1234567890, nonce: "0123456789abcdef",
			secret: "00112233445566778899aabbccddeeff", timestamp: 1700000000,
			want: "408599f97774ba146aa777f429d0514c",
		},
		{
			// printf %s 4294967295 ffffffffffffffff fedcba9876543210fedcba9876543210 0 | md5sum
			name: "largest AppId, zero timestamp", appID: 4294967295, nonce: "ffffffffffffffff",
			secret: "fedcba9876543210fedcba9876543210", timestamp: 0,
			want: "8d1fd42588aabd363d58d00070859571",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Sign(tt.appID, tt.nonce, tt.secret, tt.timestamp); got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNonce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		source []byte
		want   string
	}{
		{name: "lowercase hex of 8 bytes", source: []byte{0x4f, 0xd2, 0x46, 0x87, 0x29, 0x6d, 0xd9, 0xf3}, want: "4fd24687296dd9f3"},
		{name: "leading zeros kept", source: []byte{0, 0, 0, 0, 0, 0, 0, 1}, want: "0000000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(testCreds, WithNonceSource(bytes.NewReader(tt.source)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.newNonce()
			if err != nil || got != tt.want {
				t.Errorf("newNonce = %q, %v; want %q", got, err, tt.want)
			}
			if _, err := c.newNonce(); err == nil {
				t.Error("newNonce on an exhausted source: no error")
			}
		})
	}

	t.Run("crypto/rand by default", func(t *testing.T) {
		t.Parallel()
		c, err := New(testCreds)
		if err != nil {
			t.Fatal(err)
		}
		valid := regexp.MustCompile(`^[0-9a-f]{16}$`)
		seen := map[string]bool{}
		for range 100 {
			n, err := c.newNonce()
			if err != nil || !valid.MatchString(n) || seen[n] {
				t.Fatalf("newNonce = %q, %v: want 16 lowercase hex characters, never repeated", n, err)
			}
			seen[n] = true
		}
	})
}
