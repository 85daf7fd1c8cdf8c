// Command devstack runs the function locally under AWS's Lambda Runtime
// Interface Emulator, without Docker, beside a local ZIM server and a local
// Secrets Manager (moto_server).
//
//	devstack demo [-events DIR]    invoke every sample event and print a report
//	devstack invoke -event FILE    invoke one event and print the raw response
//
// With ZEGO_TARGET=aws, invoke runs the function with your own AWS credentials,
// AWS_REGION and ZEGO_SECRET_ID against the real ZEGO API instead.
//
// Everything binds to 127.0.0.1, builds and logs go under build/devstack/,
// and every process started is stopped on exit, failure or Ctrl-C.
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

	"github.com/zim-deleteconv/zim-deleteconv/internal/devstack"
)

const usage = `usage:
  devstack demo [-events DIR]   run every sample event through the function, locally, and report
  devstack invoke -event FILE   invoke the function with one event and print the raw response

ZEGO_TARGET=aws (invoke only) uses your AWS credentials, AWS_REGION, ZEGO_SECRET_ID and the real ZEGO API.
`

func main() {
	// Ctrl-C and SIGTERM cancel the run; the deferred Close then stops every
	// process. A second signal kills this process at once (its direct children
	// die with it: devstack asks the kernel for that when it starts them).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	var code int
	switch args[0] {
	case "demo":
		code, err = demo(ctx, args[1:], stdout, stderr)
	case "invoke":
		code, err = invoke(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "devstack: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			fmt.Fprintln(stderr, "devstack: interrupted; every process it started is stopped")
			return 130
		}
		fmt.Fprintln(stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("devstack demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.String("events", "events", "folder of sample events (*.json)")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	target, err := devstack.TargetFromEnv()
	if err != nil {
		return 2, err
	}
	if target != devstack.TargetLocal {
		return 2, fmt.Errorf("devstack demo runs against the local stack only (unset %s); use `devstack invoke` for %s=%s", devstack.TargetEnv, devstack.TargetEnv, target)
	}
	samples, err := devstack.Samples(*events)
	if err != nil {
		return 1, err
	}
	start := time.Now()
	s, err := devstack.Start(ctx, devstack.Config{Progress: stderr})
	if err != nil {
		return 1, err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "devstack: ready in %s; invoking %d sample events one at a time\n\n", time.Since(start).Round(time.Millisecond), len(samples))
	ok, err := devstack.RunDemo(ctx, s, samples, stdout, isTerminal(os.Stdout))
	if err != nil {
		return 1, err
	}
	if err := s.Close(); err != nil {
		return 1, err
	}
	if !ok {
		return 1, nil
	}
	return 0, nil
}

func invoke(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("devstack invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	eventPath := fs.String("event", "", "event file (JSON), e.g. events/sqs.json")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if *eventPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2, nil
	}
	event, err := os.ReadFile(*eventPath)
	if err != nil {
		return 1, err
	}
	target, err := devstack.TargetFromEnv()
	if err != nil {
		return 2, err
	}
	s, err := devstack.Start(ctx, devstack.Config{Target: target, Progress: stderr})
	if err != nil {
		return 1, err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "devstack: invoking with %s (%s)\n", filepath.Base(*eventPath), devstack.DetectTrigger(event))
	res, err := s.Invoke(ctx, event)
	if err != nil {
		return 1, err
	}
	stdout.Write(res.Body)
	if len(res.Body) == 0 || res.Body[len(res.Body)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if res.FunctionError {
		fmt.Fprintf(stderr, "devstack: function error %s\n", res.ErrorType)
	}
	fmt.Fprintf(stderr, "devstack: answered in %s; function logs in %s\n", res.Latency.Round(time.Millisecond), s.LogDir())
	return 0, s.Close()
}

// isTerminal reports whether f is a character device (a terminal), for colour
// and alignment.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
