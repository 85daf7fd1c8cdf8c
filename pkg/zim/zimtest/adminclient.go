package zimtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// AdminClient drives a Server's admin API over HTTP, for tests that run the
// server as a separate process (cmd/zimserver). Its methods mirror the
// Server's.
type AdminClient struct {
	baseURL string
	hc      *http.Client
}

// AdminOption configures an AdminClient.
type AdminOption func(*AdminClient)

// WithAdminHTTPClient makes the AdminClient send its calls with hc, for
// example one that trusts an HTTPS server's certificate (Server.Client, or a
// client built from the PEM file of cmd/zimserver -tls-cert-out). The default
// client trusts the system's roots only and times out after 30 seconds.
func WithAdminHTTPClient(hc *http.Client) AdminOption {
	return func(c *AdminClient) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// NewAdminClient returns a client for the server at baseURL (its URL, the
// ZIM_URL that cmd/zimserver prints, with or without a path prefix).
func NewAdminClient(baseURL string, opts ...AdminOption) *AdminClient {
	c := &AdminClient{
		baseURL: strings.TrimRight(baseURL, "/"),
		hc:      &http.Client{Timeout: 30 * time.Second},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Requests returns the server's request log (see Server.Requests).
func (c *AdminClient) Requests(ctx context.Context) ([]Request, error) {
	var out []Request
	err := c.do(ctx, http.MethodGet, "requests", nil, nil, &out)
	return out, err
}

// ResetRequests empties the server's request log (see Server.ResetRequests).
func (c *AdminClient) ResetRequests(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "requests", nil, nil, nil)
}

// Inject queues a fault (see Server.Inject); a malformed fault is an error.
func (c *AdminClient) Inject(ctx context.Context, f Fault) error {
	return c.do(ctx, http.MethodPost, "faults", nil, f, nil)
}

// SetSecret adds an app or rotates its secret (see Server.SetSecret).
func (c *AdminClient) SetSecret(ctx context.Context, appID uint32, serverSecret string) error {
	return c.do(ctx, http.MethodPost, "secret", nil, secretBody{AppID: appID, ServerSecret: serverSecret}, nil)
}

// Seed stores conversations of fromUserID (see Server.Seed); unlike
// Server.Seed, the server validates them.
func (c *AdminClient) Seed(ctx context.Context, appID uint32, fromUserID string, convs ...zim.Conversation) error {
	f := seedFile{Apps: []seedApp{}, Conversations: []seedConversations{{AppID: appID, FromUserID: fromUserID, List: convs}}}
	return c.do(ctx, http.MethodPost, "seed", nil, f, nil)
}

// Conversations returns all conversations of fromUserID, newest first (see Server.Conversations).
func (c *AdminClient) Conversations(ctx context.Context, appID uint32, fromUserID string) ([]zim.Conversation, error) {
	q := url.Values{"AppId": {strconv.FormatUint(uint64(appID), 10)}, "FromUserId": {fromUserID}}
	var out []zim.Conversation
	err := c.do(ctx, http.MethodGet, "conversations", q, nil, &out)
	return out, err
}

// do calls one admin endpoint. Errors never include the request body, which
// may hold a secret.
func (c *AdminClient) do(ctx context.Context, method, endpoint string, q url.Values, in, out any) error {
	u := c.baseURL + adminPrefix + endpoint
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("zimtest admin: %s %s: %w", method, endpoint, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("zimtest admin: %s %s: %w", method, endpoint, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("zimtest admin: %s %s: %w", method, endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return fmt.Errorf("zimtest admin: %s %s: reading the answer: %w", method, endpoint, err)
	}
	if resp.StatusCode/100 != 2 {
		var e adminError
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = truncate(string(data), 200)
		}
		return fmt.Errorf("zimtest admin: %s %s: HTTP %d: %s", method, endpoint, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("zimtest admin: %s %s: decoding the answer: %w", method, endpoint, err)
		}
	}
	return nil
}
