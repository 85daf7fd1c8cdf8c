package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// Packages perfbench builds, relative to the module root.
const helloPackage = "./cmd/perfbench/hello"

// Users of the local ZIM server that perfbench seeds (the seed file's users
// stay untouched).
const (
	coldUser = "perf-cold"
	warmUser = "perf-warm"
	loadUser = "perf-load"
)

// warmSpacing separates warm invocations: more than the limiter's 51.5 ms
// spacing at 20/s, so no invocation waits for a rate-limit slot.
const warmSpacing = 100 * time.Millisecond

// maxDeliveries bounds how often the throughput run delivers a failing message again.
const maxDeliveries = 5

// ZEGO's answers the throughput run counts.
const (
	codeConversationNotFound = 660800002
	codeAppIDRateLimited     = 660300005
)

// results holds every measurement; report turns it into the table.
type results struct {
	env environment

	coldOurs, coldHello []float64 // first-invocation latency, ms
	coldCall            []float64 // ours: the function's own latencyMs of that first DeleteConv call (secret fetch included)

	warmOurs, warmHello []float64 // warm invocation latency, ms
	warmCall            []float64 // ours: the function's latencyMs of each warm DeleteConv call
	warmOverhead        []float64 // ours: invocation latency minus that call time

	load load

	lat *latencyResults // the latency profile; nil when not run

	rssOurs, rssHello   int64 // VmHWM of the bootstrap, bytes
	helloInvocations    int   // what the hello-world process served before its VmHWM was read
	sizeOurs, sizeHello int64 // linux/arm64 bootstrap, bytes
}

// load is the outcome of the throughput run.
type load struct {
	messages, batches, invocations, deliveries int
	unfinished                                 int // valid messages still failing after maxDeliveries
	lost                                       int // reported done, yet the conversation is still stored
	requests, accepted, throttled              int // DeleteConv requests in the ZIM server's log
	span                                       time.Duration
	wall                                       time.Duration
}

// rate is the accepted requests per second, first to last, in the ZIM server's log.
func (l load) rate() float64 {
	if l.accepted < 2 || l.span <= 0 {
		return 0
	}
	return float64(l.accepted-1) / l.span.Seconds()
}

// environment is where and from what the figures come.
type environment struct {
	cpu    string
	cores  int
	date   time.Time
	goVer  string
	commit string
	// loadStart and loadEnd are the 1-minute load averages when the run
	// started and ended ("" when unknown): the machine is shared.
	loadStart, loadEnd string
}

// loadAverage is the 1-minute load average from /proc/loadavg, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// bench runs the measurements: two local stacks (one with the function, one
// with the hello-world bootstrap), each running its emulated functions.
type bench struct {
	opt      options
	root     string
	dir      string // build/perfbench
	progress io.Writer

	ours, hello *devstack.Stack
	admin       *zimtest.AdminClient
	app         uint32

	zimBin, oursBin, helloBin, beforeBin string // host builds
	lat                                  *devstack.Stack
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "perfbench: "+format+"\n", args...)
}

// close stops every stack; safe to call more than once.
func (b *bench) close() error {
	var errs []error
	for _, s := range []*devstack.Stack{b.ours, b.hello, b.lat} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

func (b *bench) measure(ctx context.Context) (results, error) {
	var res results
	res.env = b.environment(ctx)

	b.logf("building both bootstraps (linux/%s for the emulator, linux/arm64 for the sizes) and the ZIM server", runtime.GOARCH)
	host := filepath.Join(b.dir, "host")
	arm := filepath.Join(b.dir, "arm64")
	oursBin := filepath.Join(host, "deleteconv", "bootstrap")
	helloBin := filepath.Join(host, "hello", "bootstrap")
	builds := []struct{ pkg, out, arch string }{
		{devstack.FunctionPackage, oursBin, runtime.GOARCH},
		{helloPackage, helloBin, runtime.GOARCH},
		{devstack.FunctionPackage, filepath.Join(arm, "deleteconv", "bootstrap"), "arm64"},
		{helloPackage, filepath.Join(arm, "hello", "bootstrap"), "arm64"},
	}
	for _, bd := range builds {
		if err := lambdaBuild(ctx, b.root, bd.pkg, bd.out, bd.arch); err != nil {
			return res, err
		}
	}
	zimBin, err := devstack.BuildZIMServer(ctx, b.root, host)
	if err != nil {
		return res, err
	}
	b.zimBin, b.oursBin, b.helloBin = zimBin, oursBin, helloBin
	if b.opt.latency && b.opt.before != "" {
		b.logf("building the function at %s, before the init warm-up, for the latency profile's before column", b.opt.before)
		if b.beforeBin, err = buildAt(ctx, b.root, b.opt.before, filepath.Join(b.dir, "src-before"), filepath.Join(host, "before", "bootstrap")); err != nil {
			return res, err
		}
	}
	var errSize error
	res.sizeOurs, errSize = fileSize(builds[2].out)
	res.sizeHello, err = fileSize(builds[3].out)
	if err := errors.Join(errSize, err); err != nil {
		return res, err
	}

	if b.opt.loopback {
		if err := b.loopback(ctx, &res); err != nil {
			return res, err
		}
	}
	if b.opt.latency {
		if err := b.latencyProfile(ctx, &res); err != nil {
			return res, err
		}
	}
	res.env.loadEnd = loadAverage()
	return res, nil
}

// loopback measures both bootstraps on loopback, a local stack each.
func (b *bench) loopback(ctx context.Context, res *results) error {
	b.logf("loopback: starting a local stack for each bootstrap")
	zimBin, oursBin, helloBin := b.zimBin, b.oursBin, b.helloBin
	var err error
	stack := func(name, bootstrap string) (*devstack.Stack, error) {
		return devstack.Start(ctx, devstack.Config{
			Root:      b.root,
			Bootstrap: bootstrap,
			ZIMServer: zimBin,
			LogDir:    filepath.Join(b.dir, "logs", name),
			Function:  devstack.FunctionConfig{Name: "warm"}, // the shared table's budget of 20/s, as deployed (NoStateTable: the static default 20/s)
		})
	}
	if b.ours, err = stack("deleteconv", oursBin); err != nil {
		return err
	}
	if b.hello, err = stack("hello", helloBin); err != nil {
		return err
	}
	b.admin = b.ours.Admin()
	b.app = b.ours.AppID()

	if err := b.coldStarts(ctx, res); err != nil {
		return err
	}
	if err := b.warmInvocations(ctx, res); err != nil {
		return err
	}
	if err := b.throughput(ctx, res); err != nil {
		return err
	}
	if res.rssHello, err = bootstrapHWM(b.hello, "warm"); err != nil {
		return err
	}
	res.helloInvocations = 1 + b.opt.warm
	// The latency profile runs next, on this machine alone.
	return b.close()
}

// coldStarts starts a fresh emulator for each bootstrap in turn and times its
// first invocation, which starts the process. The first pair warms the page
// cache and is not counted.
func (b *bench) coldStarts(ctx context.Context, res *results) error {
	n := b.opt.cold
	convs, err := b.seedPeers(ctx, coldUser, "cold", n+1)
	if err != nil {
		return err
	}
	b.logf("cold starts: %d of each bootstrap, alternating, each in a fresh emulator (plus one discarded warm-up)", n)
	for i := range n + 1 {
		event := directEvent(coldUser, convs[i])
		r, err := coldInvoke(ctx, b.ours, "", fmt.Sprintf("cold-deleteconv-%02d", i), nil, event)
		if err != nil {
			return err
		}
		call, err := deleted(r)
		if err != nil {
			return fmt.Errorf("cold start %d: %w", i, err)
		}
		h, err := coldInvoke(ctx, b.hello, "", fmt.Sprintf("cold-hello-%02d", i), nil, event)
		if err != nil {
			return err
		}
		if err := echoed(h, event); err != nil {
			return fmt.Errorf("hello-world cold start %d: %w", i, err)
		}
		if i == 0 {
			continue
		}
		res.coldOurs = append(res.coldOurs, msOf(r.Latency))
		res.coldCall = append(res.coldCall, call)
		res.coldHello = append(res.coldHello, msOf(h.Latency))
	}
	return nil
}

// seedPeers gives user n one-on-one conversations named prefix-00, prefix-01, …
func (b *bench) seedPeers(ctx context.Context, user, prefix string, n int) ([]zim.Conversation, error) {
	convs := make([]zim.Conversation, n)
	for i := range convs {
		convs[i] = zim.Conversation{ConvID: fmt.Sprintf("%s-%02d", prefix, i), ConvType: zim.ConvTypePeer}
	}
	return convs, b.admin.Seed(ctx, b.app, user, convs...)
}

// warmInvocations times direct invocations of each stack's first function
// after its cold start, warmSpacing apart, alternating between the two.
func (b *bench) warmInvocations(ctx context.Context, res *results) error {
	n := b.opt.warm
	convs, err := b.seedPeers(ctx, warmUser, "warm", n+1)
	if err != nil {
		return err
	}
	b.logf("warm invocations: %d of each bootstrap, %d ms apart", n, warmSpacing.Milliseconds())
	for i := range n + 1 {
		event := directEvent(warmUser, convs[i])
		r, err := b.ours.Invoke(ctx, event)
		if err != nil {
			return err
		}
		call, err := deleted(r)
		if err != nil {
			return fmt.Errorf("warm invocation %d: %w", i, err)
		}
		h, err := b.hello.Invoke(ctx, event)
		if err != nil {
			return err
		}
		if err := echoed(h, event); err != nil {
			return fmt.Errorf("hello-world warm invocation %d: %w", i, err)
		}
		if i > 0 { // the first one started the process
			if r.ColdStart || h.ColdStart {
				return fmt.Errorf("warm invocation %d: the emulator started the function again", i)
			}
			res.warmOurs = append(res.warmOurs, msOf(r.Latency))
			res.warmCall = append(res.warmCall, call)
			res.warmOverhead = append(res.warmOverhead, msOf(r.Latency)-call)
			res.warmHello = append(res.warmHello, msOf(h.Latency))
		}
		if err := sleep(ctx, warmSpacing); err != nil {
			return err
		}
	}
	return nil
}

// throughput runs the throughput measurement on the function's stack and
// reads the bootstrap's VmHWM at the end.
func (b *bench) throughput(ctx context.Context, res *results) error {
	b.logf("throughput: %d SQS messages in batches of 10, default rate budget, one invocation at a time", b.opt.messages)
	var err error
	if res.load, err = throughput(ctx, b.ours, b.admin, b.app, "load", b.opt.messages); err != nil {
		return err
	}
	res.rssOurs, err = bootstrapHWM(b.ours, "load")
	return err
}

// throughput sends messages SQS messages, each deleting a stored
// conversation, in batches of 10 invoked one at a time (as Lambda's poller
// does for one instance) to a fresh function named name with the default rate
// budget, delivering failures again as the queue would. The ZIM server's
// request log times the accepted requests.
func throughput(ctx context.Context, s *devstack.Stack, admin *zimtest.AdminClient, app uint32, name string, messages int) (load, error) {
	var l load
	type msg struct {
		id   string
		conv zim.Conversation
	}
	var msgs []msg
	var convs []zim.Conversation
	for i := range messages {
		c := zim.Conversation{ConvID: fmt.Sprintf("load-%04d", i), ConvType: zim.ConvTypePeer}
		if i%2 == 1 {
			c = zim.Conversation{ConvID: fmt.Sprintf("#load-%04d", i), ConvType: zim.ConvTypeGroup}
		}
		convs = append(convs, c)
		msgs = append(msgs, msg{id: fmt.Sprintf("perf-%04d", i), conv: c})
	}
	if err := admin.Seed(ctx, app, loadUser, convs...); err != nil {
		return l, err
	}
	f, err := s.StartFunction(ctx, devstack.FunctionConfig{Name: name})
	if err != nil {
		return l, err
	}
	if err := admin.ResetRequests(ctx); err != nil {
		return l, err
	}

	l.messages = len(msgs)
	l.batches = (len(msgs) + 9) / 10
	done := map[string]bool{}
	pending := msgs
	start := time.Now()
	for l.deliveries < maxDeliveries && len(pending) > 0 {
		l.deliveries++
		var failed []msg
		for batch := range slices.Chunk(pending, 10) {
			var recs [][2]string
			for _, m := range batch {
				recs = append(recs, [2]string{m.id, string(directEvent(loadUser, m.conv))})
			}
			r, err := f.Invoke(ctx, sqsEvent(recs))
			if err != nil {
				return l, err
			}
			l.invocations++
			failures, err := batchFailures(r)
			if err != nil {
				return l, err
			}
			for _, m := range batch {
				if slices.Contains(failures, m.id) {
					failed = append(failed, m)
				} else {
					done[m.id] = true
				}
			}
		}
		pending = failed
	}
	l.wall = time.Since(start)
	l.unfinished = len(pending)

	left, err := admin.Conversations(ctx, app, loadUser)
	if err != nil {
		return l, err
	}
	for _, m := range msgs {
		if done[m.id] && slices.ContainsFunc(left, func(c zim.Conversation) bool { return c.ConvID == m.conv.ConvID && c.ConvType == m.conv.ConvType }) {
			l.lost++
		}
	}
	reqs, err := admin.Requests(ctx)
	if err != nil {
		return l, err
	}
	var first, last time.Time
	for _, r := range reqs {
		if r.Action != "DeleteConv" {
			continue
		}
		l.requests++
		switch r.Code {
		case 0, codeConversationNotFound:
			if l.accepted == 0 {
				first = r.Time
			}
			last = r.Time
			l.accepted++
		case codeAppIDRateLimited:
			l.throttled++
		}
	}
	l.span = last.Sub(first)
	return l, nil
}

// bootstrapHWM reads the peak RSS (VmHWM) of the bootstrap that the emulator
// named function started.
func bootstrapHWM(s *devstack.Stack, function string) (int64, error) {
	for _, p := range s.Processes() {
		if p.Name != function {
			continue
		}
		kids, err := devstack.Descendants(p.PID)
		if err != nil {
			return 0, err
		}
		for _, k := range kids {
			if k.Name == "bootstrap" {
				status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", k.PID))
				if err != nil {
					return 0, err
				}
				return vmHWM(string(status))
			}
		}
	}
	return 0, fmt.Errorf("no bootstrap process under the emulator %q", function)
}

// lambdaBuild builds pkg for linux/arch as the Makefile builds the Lambda
// bootstrap: no cgo, -tags lambda.norpc, -trimpath, no symbols.
func lambdaBuild(ctx context.Context, root, pkg, out, arch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	output, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("go build %s (linux/%s): %w\n%s", pkg, arch, err, strings.TrimSpace(string(output)))
	}
	return nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// environment describes the machine and the checkout. Missing details
// (no git, no model name) read "unknown" rather than stopping the run.
func (b *bench) environment(ctx context.Context) environment {
	env := environment{cpu: "unknown", cores: runtime.NumCPU(), date: time.Now().UTC(),
		goVer: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, commit: "unknown"}
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		env.cpu = cpuModel(string(info))
	}
	env.loadStart = loadAverage()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = b.root
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if c, err := git("rev-parse", "--short=12", "HEAD"); err == nil {
		env.commit = c
		if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			env.commit += " (with uncommitted changes)"
		}
	}
	return env
}

func directEvent(user string, c zim.Conversation) []byte {
	b, _ := json.Marshal(struct {
		FromUserID string       `json:"FromUserId"`
		ConvID     string       `json:"ConvId"`
		ConvType   zim.ConvType `json:"ConvType"`
	}{user, c.ConvID, c.ConvType})
	return b
}

// sqsEvent is an SQS event from a standard queue holding the records
// (message id, body), in order.
func sqsEvent(records [][2]string) []byte {
	ev := events.SQSEvent{}
	for _, r := range records {
		sum := md5.Sum([]byte(r[1]))
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:     r[0],
			ReceiptHandle: "AQEB" + r[0],
			Body:          r[1],
			Md5OfBody:     hex.EncodeToString(sum[:]),
			Attributes: map[string]string{
				"ApproximateReceiveCount": "1",
				"SentTimestamp":           "1795786036000",
			},
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSource:       "aws:sqs",
			EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv-queue",
			AWSRegion:         "us-east-1",
		})
	}
	b, _ := json.Marshal(ev)
	return b
}

// deleted checks that r is the function's "deleted" answer and returns the
// latencyMs of its outcome log line: the time spent in the DeleteConv call,
// credentials and rate-limit wait included.
func deleted(r devstack.InvokeResult) (float64, error) {
	if r.FunctionError {
		return 0, fmt.Errorf("function error %s: %s", r.ErrorType, r.ErrorMessage)
	}
	var answer struct{ Outcome string }
	if err := json.Unmarshal(r.Body, &answer); err != nil || answer.Outcome != "deleted" {
		return 0, fmt.Errorf("answer %s, want the outcome deleted", r.Body)
	}
	for _, l := range r.Logs {
		if l.String("msg") == "request outcome" {
			if v, ok := l.Number("latencyMs"); ok {
				return v, nil
			}
		}
	}
	return 0, errors.New("no request outcome log line with latencyMs")
}

// echoed checks that r is the hello-world function's answer to event.
func echoed(r devstack.InvokeResult, event []byte) error {
	if r.FunctionError {
		return fmt.Errorf("function error %s: %s", r.ErrorType, r.ErrorMessage)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, event); err != nil {
		return err
	}
	if !bytes.Equal(bytes.TrimSpace(r.Body), want.Bytes()) {
		return fmt.Errorf("answer %s, want the event back", r.Body)
	}
	return nil
}

// batchFailures returns the message ids of an SQS answer's batchItemFailures.
func batchFailures(r devstack.InvokeResult) ([]string, error) {
	if r.FunctionError {
		return nil, fmt.Errorf("function error %s: %s", r.ErrorType, r.ErrorMessage)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(r.Body, &resp); err != nil || !bytes.Contains(r.Body, []byte(`"batchItemFailures"`)) {
		return nil, fmt.Errorf("answer %s has no batchItemFailures", r.Body)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids, nil
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
