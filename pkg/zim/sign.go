package zim

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// SignatureVersion is the only signature scheme ZEGO's server API accepts.
const SignatureVersion = "2.0"

// Sign computes ZEGO's version 2.0 request signature:
// hex(md5(AppId + nonce + serverSecret + timestamp)), the four joined as text
// with AppId and timestamp in decimal. The result is 32 lowercase hex characters.
//
// Sign is a pure function so that it can be checked against ZEGO's published
// vector; the client calls it with a fresh nonce and timestamp on every attempt.
func Sign(appID uint32, nonce, serverSecret string, timestamp int64) string {
	// A stack buffer keeps signing allocation-free apart from the returned string.
	var buf [128]byte
	b := strconv.AppendUint(buf[:0], uint64(appID), 10)
	b = append(b, nonce...)
	b = append(b, serverSecret...)
	b = strconv.AppendInt(b, timestamp, 10)
	sum := md5.Sum(b)
	var out [2 * md5.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// nonceBytes is the number of random bytes in a SignatureNonce (16 hex characters).
const nonceBytes = 8

// newNonce reads a SignatureNonce from the client's nonce source.
func (c *Client) newNonce() (string, error) {
	var raw [nonceBytes]byte
	// Custom sources (tests) need not be safe for concurrent use.
	c.nonceMu.Lock()
	_, err := io.ReadFull(c.nonce, raw[:])
	c.nonceMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("zim: reading a signature nonce: %w", err)
	}
	var out [2 * nonceBytes]byte
	hex.Encode(out[:], raw[:])
	return string(out[:]), nil
}
