package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RIEBinary is the Lambda Runtime Interface Emulator's executable name.
const RIEBinary = "aws-lambda-rie"

// InvokePath is the emulator's invoke endpoint (the Lambda Invoke API's path).
const InvokePath = "/2015-03-31/functions/function/invocations"

// FunctionName starts every AWS_LAMBDA_FUNCTION_NAME of the stack: the api
// function runs as deleteconv-api, each queue instance as deleteconv-queue.
const FunctionName = "deleteconv"

// DefaultFunctionTimeout is the deadline each invocation gets unless
// FunctionConfig.Timeout says otherwise (the template's timeout).
const DefaultFunctionTimeout = 30 * time.Second

// TimedOutErrorType is the errorType Lambda reports when the function did not
// answer before its deadline; the emulator only answers "Task timed out".
const TimedOutErrorType = "Sandbox.Timedout"

// FunctionConfig configures one emulated function.
type FunctionConfig struct {
	// Name names the emulator and its log file (LogDir/Name.log); the
	// function runs as AWS_LAMBDA_FUNCTION_NAME deleteconv-Name. Default "api".
	Name string
	// Timeout is AWS_LAMBDA_FUNCTION_TIMEOUT, rounded up to whole seconds
	// (default DefaultFunctionTimeout).
	Timeout time.Duration
	// RateLimit is ZEGO_RATE_LIMIT, the instance's requests per second to
	// ZEGO; 0 leaves it to the function's default (20), except for the api
	// function of a stack with a queue (DefaultAPIRate).
	RateLimit float64
	// Env holds KEY=value entries set last, over the stack's own, e.g.
	// "ZEGO_RATE_LIMIT=5", "LOG_LEVEL=debug", "ZEGO_SECRET_ID=other".
	Env []string
	// Bootstrap runs another build than the stack's for this function, for
	// example to compare two versions under the same conditions.
	Bootstrap string
}

// Function is the bootstrap running under the Lambda Runtime Interface
// Emulator. The emulator serves one invocation at a time (it fails on
// concurrent ones, as one Lambda instance would never see them), so Invoke
// serialises its callers.
type Function struct {
	// Name is FunctionConfig.Name.
	Name string
	// URL is the emulator's base URL, e.g. http://127.0.0.1:40123.
	URL string

	rie    *child
	client *http.Client
	mu     sync.Mutex // one invocation at a time
}

// InvokeResult is the emulator's answer to one invocation.
type InvokeResult struct {
	// RequestID is the Lambda request id the function saw (devstack sets it).
	RequestID string
	// Body is the response payload: the handler's result, or Lambda's
	// {"errorType": ..., "errorMessage": ...} for a function error.
	Body []byte
	// FunctionError is true when Body is a function error (it has errorType),
	// or the function did not answer before its deadline.
	FunctionError bool
	ErrorType     string
	ErrorMessage  string
	// Latency is the time from sending the event to the complete answer.
	Latency time.Duration
	// ColdStart is true when this invocation started the bootstrap.
	ColdStart bool
	// Logs are the JSON lines the function wrote during this invocation.
	Logs []LogRecord
}

// startFunction starts the emulator on two free loopback ports running
// bootstrap with env. A port can be taken between finding it free and the
// emulator binding it; the emulator then exits and another pair is tried.
func startFunction(ctx context.Context, name, rie, bootstrap string, env []string, logDir string, timeout time.Duration) (*Function, error) {
	var lastErr error
	for range 3 {
		ports, err := freePorts(2)
		if err != nil {
			return nil, fmt.Errorf("devstack: finding free ports: %w", err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		argv := []string{rie,
			"--log-level", "info",
			"--runtime-interface-emulator-address", addr,
			"--runtime-api-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
			bootstrap,
		}
		// The emulator runs the bootstrap in its own working directory, as
		// Lambda runs it in /var/task.
		c, err := startChild(name, argv, env, filepath.Dir(bootstrap), logDir, nil)
		if err != nil {
			return nil, err
		}
		f := &Function{Name: name, URL: "http://" + addr, rie: c, client: &http.Client{}}
		if err := waitHTTP(ctx, f.URL+"/", c, timeout); err != nil {
			_ = c.stop(time.Second)
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return f, nil
	}
	return nil, fmt.Errorf("devstack: %s: %w", name, lastErr)
}

// waitHTTP polls url until it answers HTTP with any status (the emulator
// answers 404 on /), c exits, ctx ends, or timeout passes.
func waitHTTP(ctx context.Context, url string, c *child, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-c.exited:
			return c.exitedErr()
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s: %w", c.name, url, ctx.Err())
		case <-tick.C:
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Invoke sends event to the function and returns its answer. A function error
// (errorType in the answer) is a result, not an error: the error is for an
// invocation that did not complete (emulator unreachable or failing, ctx done).
func (f *Function) Invoke(ctx context.Context, event []byte) (InvokeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()

	id := newRequestID()
	res := InvokeResult{RequestID: id}
	mark := f.rie.stdout.mark()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+InvokePath, bytes.NewReader(event))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-RequestId", id)
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return res, f.invokeErr(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.Latency = time.Since(start)
	if err != nil {
		return res, f.invokeErr(err)
	}
	res.Body = body

	// The emulator prints "REPORT RequestId: <id>" on the stdout it shares
	// with the function before it answers, so once that line is read every
	// line the function wrote for this invocation has been too.
	report := "REPORT RequestId: " + id
	f.rie.stdout.waitFor(mark, func(l string) bool { return strings.HasPrefix(l, report) }, 2*time.Second)
	lines := f.rie.stdout.since(mark)
	res.ColdStart = hasReportWith(lines, report, "Init Duration")
	res.Logs = parseRecords(between(lines, "START RequestId: "+id, report))

	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("devstack: %s: the emulator answered HTTP %d: %s", f.Name, resp.StatusCode, snippet(body))
	}
	if bytes.HasPrefix(body, []byte("Task timed out")) {
		res.FunctionError = true
		res.ErrorType = TimedOutErrorType
		res.ErrorMessage = string(body)
		return res, nil
	}
	var fe struct {
		ErrorType    *string `json:"errorType"`
		ErrorMessage string  `json:"errorMessage"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.ErrorType != nil {
		res.FunctionError = true
		res.ErrorType = *fe.ErrorType
		res.ErrorMessage = fe.ErrorMessage
	}
	return res, nil
}

func (f *Function) invokeErr(err error) error {
	select {
	case <-f.rie.exited:
		return fmt.Errorf("devstack: %s: %w", f.Name, f.rie.exitedErr())
	default:
		return fmt.Errorf("devstack: %s: invoking: %w", f.Name, err)
	}
}

// Processes lists the emulator and every live process below it (the
// bootstrap, once an invocation has started it).
func (f *Function) Processes() []Process { return f.rie.processes() }

// Logs returns every JSON line the function has written so far.
func (f *Function) Logs() []LogRecord { return parseRecords(f.rie.stdout.since(0)) }

// Output returns every line of the emulator's and the function's output so far.
func (f *Function) Output() []string {
	return append(f.rie.stdout.since(0), f.rie.stderr.since(0)...)
}

// between returns the lines after the first that starts with from, up to the
// first that starts with to.
func between(lines []string, from, to string) []string {
	start := -1
	for i, l := range lines {
		switch {
		case start < 0 && strings.HasPrefix(l, from):
			start = i + 1
		case start >= 0 && strings.HasPrefix(l, to):
			return lines[start:i]
		}
	}
	if start < 0 {
		return lines
	}
	return lines[start:]
}

// hasReportWith reports whether a line starts with prefix and contains substr.
func hasReportWith(lines []string, prefix, substr string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func snippet(b []byte) string {
	const n = 512
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

var errClosed = errors.New("devstack: the stack is closed")
