package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// beforeWarmUp is the parent of 6fdf650, the commit that made init fetch the
// secret and open the connection to ZEGO: the same function without the
// warm-up, for the latency profile's "before" column.
const beforeWarmUp = "d23d76a"

// http1Env makes a function's Go HTTP client offer only HTTP/1.1 (Go's
// documented GODEBUG setting): the client then runs exactly as it does
// against a server that does not offer HTTP/2 (ALPN settles on http/1.1
// either way), and zimtest, which always offers it, cannot be told otherwise.
const http1Env = "GODEBUG=http2client=0"

// variant is one of the bootstraps the latency profile compares.
type variant int

const (
	helloWorld variant = iota
	before             // the function at beforeWarmUp
	after              // the function at this commit
	variants
)

// protocol is how the function talks to the ZIM server in a cold batch.
type protocol int

const (
	http2 protocol = iota
	http1
	protocols
)

func (p protocol) String() string {
	if p == http1 {
		return "HTTP/1.1"
	}
	return "HTTP/2"
}

// latencyResults are the figures with the latency profile, per variant.
type latencyResults struct {
	profile netem.Profile
	before  string // the revision of the before column; "" when not measured

	first     [variants][]float64 // first invocation under the emulator, ms: process start → answer
	firstCall [variants][]float64 // the function's latencyMs for its first DeleteConv call

	pause    time.Duration
	provInit [variants][]float64 // own Runtime API: process start → first /next, ms
	prov     [variants][]float64 // the first invocation after the pause, ms

	warm     [variants][]float64 // warm direct invocations (hello-world and after)
	warmCall []float64           // after: the function's latencyMs of each

	batch [variants][protocols][]batchSample // cold SQS batches of 10

	load load // after: throughput with the latency profile

	servers []serverResults // first invocations per kind of ZEGO server, HTTP/2 first
}

// batchSample is one cold SQS batch of 10 in a fresh function.
type batchSample struct {
	conns   int     // connections the proxy accepted for it
	latency float64 // ms, first invocation: process start → answer
}

// latencyProfile measures the function before and after the warm-up, and
// hello-world, on one stack with TLS and the default latency profile.
func (b *bench) latencyProfile(ctx context.Context, res *results) error {
	prof := netem.DefaultProfile()
	lr := &latencyResults{profile: prof, before: b.opt.before, pause: b.opt.pause}
	res.lat = lr
	b.logf("latency profile: one local stack, HTTPS to the ZIM server, ZEGO %v per round trip (set-up %v), Secrets Manager %v (set-up %v)",
		prof.ZEGO.RoundTrip, prof.ZEGO.Setup, prof.SecretsManager.RoundTrip, prof.SecretsManager.Setup)
	var err error
	b.lat, err = devstack.Start(ctx, devstack.Config{
		Root:      b.root,
		Bootstrap: b.oursBin,
		ZIMServer: b.zimBin,
		LogDir:    filepath.Join(b.dir, "logs", "latency"),
		Function:  devstack.FunctionConfig{Name: "warm"},
		TLS:       true,
		Latency:   &prof,
	})
	if err != nil {
		return err
	}
	admin, app := b.lat.Admin(), b.lat.AppID()
	bootstraps := [variants]string{helloWorld: b.helloBin, before: b.beforeBin, after: b.oursBin}
	measured := []variant{helloWorld, after}
	if b.beforeBin != "" {
		measured = []variant{helloWorld, before, after}
	}
	seed := func(user, prefix string, n int) ([]zim.Conversation, error) {
		return seedConvs(ctx, admin, app, user, prefix, n)
	}

	// First invocations: a fresh emulator each, the variants alternating,
	// one discarded round first.
	n := b.opt.cold
	b.logf("latency profile: first invocations, %d of each of %d bootstraps, alternating, each in a fresh emulator (plus one discarded round)", n, len(measured))
	convs, err := seed(coldUser, "lat-cold", (n+1)*int(variants))
	if err != nil {
		return err
	}
	h2 := serverResults{server: serverHTTP2}
	for i := range n + 1 {
		for _, v := range measured {
			event := directEvent(coldUser, convs[i*int(variants)+int(v)])
			opened := b.lat.ZEGOConnections()
			r, err := coldInvoke(ctx, b.lat, bootstraps[v], fmt.Sprintf("lat-cold-%s-%02d", v.slug(), i), nil, event)
			if err != nil {
				return err
			}
			call, err := checkAnswer(v, r, event)
			if err != nil {
				return fmt.Errorf("latency profile, first invocation %d of %s: %w", i, v.slug(), err)
			}
			if i == 0 {
				continue
			}
			lr.first[v] = append(lr.first[v], msOf(r.Latency))
			if v != helloWorld {
				lr.firstCall[v] = append(lr.firstCall[v], call)
				h2.first[v] = append(h2.first[v], msOf(r.Latency))
				h2.firstCall[v] = append(h2.firstCall[v], call)
				h2.conns[v] = append(h2.conns[v], b.lat.ZEGOConnections()-opened)
			}
		}
	}
	lr.servers = append(lr.servers, h2)
	servers, err := parseServers(b.opt.servers)
	if err != nil {
		return err
	}
	for _, z := range servers {
		sr, err := b.firstPerServer(ctx, prof, z, measured, bootstraps)
		if err != nil {
			return err
		}
		lr.servers = append(lr.servers, sr)
	}

	// Provisioned-concurrency-like: init ahead, a pause, then the first call.
	k := b.opt.provisioned
	b.logf("latency profile: init, a %v pause, then the first invocation, %d of each (perfbench's own Runtime API)", b.opt.pause, k)
	convs, err = seed(coldUser, "lat-prov", k*int(variants))
	if err != nil {
		return err
	}
	for i := range k {
		for _, v := range measured {
			env, err := b.lat.Env(devstack.FunctionConfig{Name: fmt.Sprintf("prov-%s-%02d", v.slug(), i)})
			if err != nil {
				return err
			}
			event := directEvent(coldUser, convs[i*int(variants)+int(v)])
			h, err := heldInvoke(ctx, bootstraps[v], env, b.opt.pause, event)
			if err != nil {
				return fmt.Errorf("latency profile, held invocation %d of %s: %w", i, v.slug(), err)
			}
			if _, err := checkAnswer(v, devstack.InvokeResult{Body: h.body, Logs: h.logs}, event); err != nil {
				return fmt.Errorf("latency profile, held invocation %d of %s: %w", i, v.slug(), err)
			}
			lr.provInit[v] = append(lr.provInit[v], msOf(h.init))
			lr.prov[v] = append(lr.prov[v], msOf(h.invoke))
		}
	}

	// Warm invocations of one started process per variant.
	b.logf("latency profile: warm invocations, %d of hello-world and of the function, %d ms apart", b.opt.warm, warmSpacing.Milliseconds())
	convs, err = seed(warmUser, "lat-warm", b.opt.warm+1)
	if err != nil {
		return err
	}
	warmFns := map[variant]*devstack.Function{after: b.lat.Function()}
	if warmFns[helloWorld], err = b.lat.StartFunction(ctx, devstack.FunctionConfig{Name: "warm-hello", Bootstrap: b.helloBin}); err != nil {
		return err
	}
	for i := range b.opt.warm + 1 {
		event := directEvent(warmUser, convs[i])
		for _, v := range []variant{after, helloWorld} {
			r, err := warmFns[v].Invoke(ctx, event)
			if err != nil {
				return err
			}
			call, err := checkAnswer(v, r, event)
			if err != nil {
				return fmt.Errorf("latency profile, warm invocation %d of %s: %w", i, v.slug(), err)
			}
			if i == 0 {
				continue // the first one started the process
			}
			if r.ColdStart {
				return fmt.Errorf("latency profile, warm invocation %d of %s: the emulator started the function again", i, v.slug())
			}
			lr.warm[v] = append(lr.warm[v], msOf(r.Latency))
			if v == after {
				lr.warmCall = append(lr.warmCall, call)
			}
		}
		if err := sleep(ctx, warmSpacing); err != nil {
			return err
		}
	}

	// Cold SQS batches of 10: the connections each fresh function opens.
	m := b.opt.batches
	b.logf("latency profile: cold SQS batches of 10, %d per bootstrap and protocol, each in a fresh emulator", m)
	seq := 0
	for i := range m {
		for _, v := range measured {
			if v == helloWorld {
				continue
			}
			for p := range protocols {
				var env []string
				if p == http1 {
					env = []string{http1Env}
				}
				var recs [][2]string
				for j := range 10 {
					seq++
					c := zim.Conversation{ConvID: fmt.Sprintf("lat-batch-%04d", seq), ConvType: zim.ConvTypePeer}
					if err := admin.Seed(ctx, app, loadUser, c); err != nil {
						return err
					}
					recs = append(recs, [2]string{fmt.Sprintf("batch-%04d-%02d", seq, j), string(directEvent(loadUser, c))})
				}
				before := b.lat.ZEGOConnections()
				r, err := coldInvoke(ctx, b.lat, bootstraps[v], fmt.Sprintf("lat-batch-%s-%s-%02d", v.slug(), p.slug(), i), env, sqsEvent(recs))
				if err != nil {
					return err
				}
				failures, err := batchFailures(r)
				if err != nil {
					return fmt.Errorf("latency profile, cold batch %d of %s over %s: %w", i, v.slug(), p, err)
				}
				if len(failures) > 0 {
					return fmt.Errorf("latency profile, cold batch %d of %s over %s: %d records failed", i, v.slug(), p, len(failures))
				}
				lr.batch[v][p] = append(lr.batch[v][p], batchSample{conns: b.lat.ZEGOConnections() - before, latency: msOf(r.Latency)})
				// One batch's requests leave ZEGO's one-second window before the next.
				if err := sleep(ctx, time.Second); err != nil {
					return err
				}
			}
		}
	}

	b.logf("latency profile: throughput, %d SQS messages in batches of 10, one invocation at a time", b.opt.messages)
	lr.load, err = throughput(ctx, b.lat, admin, app, "lat-load", b.opt.messages)
	return err
}

// seedConvs stores n one-on-one conversations of user, named prefix-000, …
func seedConvs(ctx context.Context, admin *zimtest.AdminClient, app uint32, user, prefix string, n int) ([]zim.Conversation, error) {
	convs := make([]zim.Conversation, n)
	for i := range convs {
		convs[i] = zim.Conversation{ConvID: fmt.Sprintf("%s-%03d", prefix, i), ConvType: zim.ConvTypePeer}
	}
	return convs, admin.Seed(ctx, app, user, convs...)
}

func (v variant) slug() string {
	switch v {
	case helloWorld:
		return "hello"
	case before:
		return "before"
	default:
		return "after"
	}
}

func (p protocol) slug() string {
	if p == http1 {
		return "h1"
	}
	return "h2"
}

// checkAnswer checks r's answer to event: hello-world echoes it, the function
// deletes the conversation; for the function it returns the latencyMs of the
// DeleteConv call.
func checkAnswer(v variant, r devstack.InvokeResult, event []byte) (float64, error) {
	if v == helloWorld {
		return 0, echoed(r, event)
	}
	return deleted(r)
}

// coldInvoke starts a new emulator named name running bootstrap (the
// stack's when ""), with env over the stack's environment, and invokes it once.
func coldInvoke(ctx context.Context, s *devstack.Stack, bootstrap, name string, env []string, event []byte) (devstack.InvokeResult, error) {
	f, err := s.StartFunction(ctx, devstack.FunctionConfig{Name: name, Bootstrap: bootstrap, Env: env})
	if err != nil {
		return devstack.InvokeResult{}, err
	}
	r, err := f.Invoke(ctx, event)
	if err != nil {
		return r, err
	}
	if !r.ColdStart {
		return r, fmt.Errorf("%s: the emulator did not report its first invocation as a cold start", name)
	}
	return r, nil
}

// buildAt builds the function as it was at revision rev: the tree from git
// archive, extracted into src (replaced), built like the Lambda bootstrap.
func buildAt(ctx context.Context, root, rev, src, out string) (string, error) {
	if err := os.RemoveAll(src); err != nil {
		return "", err
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", rev)
	archive.Dir = root
	tar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	tar.Stdin = pipe
	var archiveErr, tarErr strings.Builder
	archive.Stderr, tar.Stderr = &archiveErr, &tarErr
	if err := tar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = tar.Wait()
		return "", fmt.Errorf("git archive %s: %w: %s", rev, err, strings.TrimSpace(archiveErr.String()))
	}
	if err := tar.Wait(); err != nil {
		return "", fmt.Errorf("extracting %s: %w: %s", rev, err, strings.TrimSpace(tarErr.String()))
	}
	return out, lambdaBuild(ctx, src, devstack.FunctionPackage, out, runtime.GOARCH)
}
