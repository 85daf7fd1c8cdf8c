// Command perfbench measures the function the way Lambda runs it, side by side
// with a hello-world aws-lambda-go function (cmd/perfbench/hello) built the
// same way, and prints markdown tables, also written to
// build/perfbench/results.md. On loopback:
//
//   - cold start: first-invocation latency under the Lambda Runtime Interface
//     Emulator, from the invocation that starts the process to its answer
//     (secret fetch from the local Secrets Manager included), each time in a
//     fresh emulator;
//   - warm per-message overhead: direct invocations spaced so the rate limiter
//     never waits, minus the time the function spent in the ZEGO call;
//   - sustained DeleteConv throughput with the default rate budget (20/s), as
//     the ZIM server's request log timed it, and its throttled answers;
//   - peak RSS of the bootstrap (VmHWM);
//   - the linux/arm64 binary sizes.
//
// Then with the latency profile (HTTPS to the ZIM server, netem.DefaultProfile()
// in front of it and of Secrets Manager), for hello-world, the function before
// the init warm-up (-before, built from git) and the function now:
//
//   - the first invocation against its round-trip budget, and the
//     connections it opens, against a ZIM server offering HTTP/2 and, with
//     -servers, against one offering only HTTP/1.1, over TLS and plain;
//   - provisioned-concurrency-like: init, a pause, then the first invocation,
//     under a Runtime API of perfbench's own (runtimeapi.go);
//   - warm invocations;
//   - connections a fresh function opens to ZEGO for a cold SQS batch of 10,
//     over HTTP/2 and over HTTP/1.1;
//   - throughput.
//
// Usage:
//
//	perfbench [-profile both|loopback|latency] [-cold 10] [-warm 30] [-messages 200]
//	          [-provisioned 5] [-pause 3s] [-batches 3] [-before d23d76a] [-servers h1tls,h1plain]
//	          [-out build/perfbench/results.md]
//
// `make bench` runs it after the Go benchmarks. It needs moto_server and git
// (the emulator is built from tools/go.mod), binds only to 127.0.0.1, and
// stops every process it started on exit, failure or Ctrl-C. See
// docs/performance.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "perfbench: interrupted; every process it started is stopped")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "perfbench:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	cold     int    // cold starts measured per function (after one discarded warm-up)
	warm     int    // warm invocations measured per function
	messages int    // SQS messages of the throughput run, in batches of 10
	out      string // where the results go, besides stdout

	loopback, latency bool          // which profiles run (-profile)
	before            string        // revision of the latency profile's before column; "" for none
	provisioned       int           // held invocations (init, pause, invoke) per bootstrap
	pause             time.Duration // between init and the held invocation
	batches           int           // cold SQS batches per bootstrap and protocol
	servers           string        // -servers: more ZEGO servers for first invocations (h1tls, h1plain)
}

// args spells the options as a command line.
func (o options) args() string {
	profile := "both"
	switch {
	case !o.latency:
		profile = "loopback"
	case !o.loopback:
		profile = "latency"
	}
	return fmt.Sprintf("-profile %s -cold %d -warm %d -messages %d -provisioned %d -pause %v -batches %d -before %q -servers %q",
		profile, o.cold, o.warm, o.messages, o.provisioned, o.pause, o.batches, o.before, o.servers)
}

func parseOptions(args []string, stderr io.Writer, root string) (options, error) {
	fs := flag.NewFlagSet("perfbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.cold, "cold", 10, "cold starts per function, each in a fresh emulator")
	fs.IntVar(&o.warm, "warm", 30, "warm direct invocations per function, 100 ms apart")
	fs.IntVar(&o.messages, "messages", 200, "SQS messages of the throughput and memory run, in batches of 10")
	fs.StringVar(&o.out, "out", filepath.Join(root, "build", "perfbench", "results.md"), "file the results table is written to")
	profile := fs.String("profile", "both", "loopback, latency (HTTPS and netem.DefaultProfile()), or both")
	fs.StringVar(&o.before, "before", beforeWarmUp, "revision whose function is the latency profile's before column (\"\": none)")
	fs.IntVar(&o.provisioned, "provisioned", 5, "held invocations per bootstrap with the latency profile: init, -pause, then the first invocation")
	fs.DurationVar(&o.pause, "pause", 3*time.Second, "pause between init and the held invocation")
	fs.IntVar(&o.batches, "batches", 3, "cold SQS batches of 10 per bootstrap and protocol with the latency profile")
	fs.StringVar(&o.servers, "servers", "h1tls,h1plain", "with the latency profile, also first invocations against a ZIM server offering only HTTP/1.1: over TLS (h1tls), plain (h1plain); comma-separated, \"\" for none")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if _, err := parseServers(o.servers); err != nil {
		return o, err
	}
	switch *profile {
	case "both":
		o.loopback, o.latency = true, true
	case "loopback":
		o.loopback = true
	case "latency":
		o.latency = true
	default:
		return o, fmt.Errorf("-profile %q: want loopback, latency or both", *profile)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.cold < 1, o.warm < 1, o.messages < 1, o.provisioned < 1, o.batches < 1:
		return o, errors.New("-cold, -warm, -messages, -provisioned and -batches must be at least 1")
	case o.pause < 0:
		return o, errors.New("-pause must not be negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root, err := devstack.FindRoot(".")
	if err != nil {
		return err
	}
	opt, err := parseOptions(args, stderr, root)
	if err != nil {
		return err
	}
	b := &bench{opt: opt, root: root, dir: filepath.Join(root, "build", "perfbench"), progress: stderr}
	defer b.close()
	res, err := b.measure(ctx)
	if err != nil {
		return err
	}
	if err := b.close(); err != nil {
		return err
	}
	out := report(res, opt)
	if _, err := io.WriteString(stdout, out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(opt.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(opt.out, []byte(out), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "perfbench: written to %s\n", opt.out)
	return nil
}
