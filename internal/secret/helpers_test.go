package secret_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Distinctive secrets: tests assert they never appear in errors or logs.
const (
	secretA = "f00dfacedeadbeef0123456789abcdef"
	secretB = "c0ffee00c0ffee00c0ffee00c0ffee00"
)

var (
	credsA = zim.Credentials{AppID: 1234567890, ServerSecret: secretA}
	credsB = zim.Credentials{AppID: 1234567890, ServerSecret: secretB}
)

func secretJSON(c zim.Credentials) string {
	return fmt.Sprintf(`{"AppId": %d, "ServerSecret": %q}`, c.AppID, c.ServerSecret)
}

// assertNoSecret fails t if text holds any of the test secrets.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{secretA, secretB} {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a ServerSecret: %q", what, text)
		}
	}
}

// fakeSM is a GetSecretValueAPI whose answer tests can change. When block is
// set, calls wait for it to be closed (or for their context to end) and then
// read the answer.
type fakeSM struct {
	mu     sync.Mutex
	value  string
	binary []byte
	err    error
	block  chan struct{}
	calls  int
}

func newFake(value string) *fakeSM { return &fakeSM{value: value} }

func (f *fakeSM) set(value string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.value, f.err = value, err
}

func (f *fakeSM) setBlock(ch chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = ch
}

func (f *fakeSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	f.calls++
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := &secretsmanager.GetSecretValueOutput{
		Name:         in.SecretId,
		VersionId:    aws.String(fmt.Sprintf("v%d", f.calls)),
		SecretBinary: f.binary,
	}
	if f.value != "" || f.binary == nil {
		out.SecretString = aws.String(f.value)
	}
	return out, nil
}

func (f *fakeSM) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// clock is an injectable clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
