// Command devstack runs the function locally as the template deploys it,
// under AWS's Lambda Runtime Interface Emulator, without Docker: an api
// function (HTTP API, direct invoke; two instances) and a queue function
// (two instances) fed from a local job queue with a dead-letter queue (moto's
// SQS) by a poller with Lambda's event source semantics, sharing one rate
// budget through the template's table in moto's DynamoDB, beside a local ZIM
// server and a local Secrets Manager (moto_server).
//
//	devstack demo [-events DIR] [-job N]            sample events, then a job of N conversations through the queue
//	devstack invoke -event FILE [-target api|queue]  invoke one event (or send it to the queue) and print what happened
//	devstack stack                                   start the local stack, print its endpoints, run until Ctrl-C
//
// Each takes -latency default: the ZIM server serves HTTPS and the functions
// reach it and Secrets Manager through proxies with netem.DefaultProfile()'s
// round trips (docs/performance.md), instead of loopback.
//
// With ZEGO_TARGET=aws, invoke runs the api function with your own AWS
// credentials, AWS_REGION and ZEGO_SECRET_ID against the real ZEGO API instead.
//
// Everything binds to 127.0.0.1, builds and logs go under build/devstack/,
// and every process started is stopped on exit, failure or Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

const usage = `usage:
  devstack demo [-events DIR] [-job N]             run every sample event through the functions, then a job of
                                                   N conversations (default 2500) through the local queue; report
  devstack invoke -event FILE [-target api|queue]  api: invoke the api function with the event, print its answer;
                                                   queue: send the body (or each SQS record's body) to the job queue
                                                   and print what the queue function made of it
  devstack stack                                   start the local stack, print its endpoints, run until Ctrl-C

Each takes -latency default: HTTPS to the ZIM server and the latency of a function in us-east-1 calling ZEGO
(100 ms per round trip) and Secrets Manager (30 ms), through local proxies; -latency off (the default) is loopback.

ZEGO_TARGET=aws (invoke -target api only) uses your AWS credentials, AWS_REGION, ZEGO_SECRET_ID and the real ZEGO API.
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
	case "stack":
		code, err = stack(ctx, args[1:], stdout, stderr)
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
	job := fs.Int("job", 2500, "conversations of the job sent through the queue (0: none)")
	latency := latencyFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if *job < 0 || fs.NArg() > 0 {
		fs.Usage()
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
	cfg := templateConfig()
	cfg.Progress = stderr
	if err := applyLatency(&cfg, *latency); err != nil {
		return 2, err
	}
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		return 1, err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "devstack: ready in %s; invoking %d sample events one at a time\n\n", time.Since(start).Round(time.Millisecond), len(samples))
	ok, err := devstack.RunDemo(ctx, s, samples, stdout)
	if err != nil {
		return 1, err
	}
	if *job > 0 {
		jobOK, err := runJob(ctx, s, jobUser, *job, stdout)
		if err != nil {
			return 1, err
		}
		ok = ok && jobOK
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
	to := fs.String("target", "api", "api: invoke the api function; queue: send to the local job queue")
	latency := latencyFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if *eventPath == "" || fs.NArg() > 0 || (*to != "api" && *to != "queue") {
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
	if *to == "queue" && target != devstack.TargetLocal {
		return 2, fmt.Errorf("devstack invoke -target queue sends to the local queue only (unset %s)", devstack.TargetEnv)
	}
	cfg := devstack.Config{Target: target, Progress: stderr}
	if target == devstack.TargetLocal {
		cfg = templateConfig()
		cfg.Progress = stderr
	}
	if err := applyLatency(&cfg, *latency); err != nil {
		return 2, err
	}
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		return 1, err
	}
	defer s.Close()
	if *to == "queue" {
		return sendAndFollow(ctx, s, event, filepath.Base(*eventPath), stdout, stderr)
	}

	fmt.Fprintf(stderr, "devstack: invoking the api function with %s (%s)\n", filepath.Base(*eventPath), devstack.DetectTrigger(event))
	res, err := s.Invoke(ctx, event)
	if err != nil {
		return 1, err
	}
	writeLine(stdout, res.Body)
	if res.FunctionError {
		fmt.Fprintf(stderr, "devstack: function error %s\n", res.ErrorType)
	}
	fmt.Fprintf(stderr, "devstack: answered in %s; function logs in %s\n", res.Latency.Round(time.Millisecond), s.LogDir())
	// A job the function handed to the queue goes on there: follow it.
	if q := s.Queue(); q != nil {
		if c, err := q.Counts(ctx); err == nil && c.Visible+c.InFlight+c.Delayed > 0 {
			fmt.Fprintf(stderr, "devstack: the function sent %d message(s) to the job queue; following them\n", c.Visible+c.InFlight+c.Delayed)
			if err := follow(ctx, q, stdout, stderr); err != nil {
				return 1, err
			}
		}
	}
	return 0, s.Close()
}

func stack(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("devstack stack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	latency := latencyFlag(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2, nil
	}
	if target, err := devstack.TargetFromEnv(); err != nil || target != devstack.TargetLocal {
		return 2, fmt.Errorf("devstack stack starts the local stack only (unset %s)", devstack.TargetEnv)
	}
	cfg := templateConfig()
	cfg.Progress = stderr
	if err := applyLatency(&cfg, *latency); err != nil {
		return 2, err
	}
	s, err := devstack.Start(ctx, cfg)
	if err != nil {
		return 1, err
	}
	defer s.Close()
	envFile := filepath.Join(s.LogDir(), "..", "sam-env.json")
	if err := writeSAMEnv(envFile, s); err != nil {
		return 1, err
	}
	writeEndpoints(stdout, s, envFile)
	fmt.Fprintln(stderr, "devstack: running; Ctrl-C stops every process")
	<-ctx.Done()
	if err := s.Close(); err != nil {
		return 1, err
	}
	return 0, nil
}

// templateConfig is the local stack as template.yaml deploys it at its
// defaults: each function's timeout, and the job queue's visibility timeout
// and redrive. A job's rounds run as long as on AWS, so the demo's job rate is
// the one a deployed stack gets (a shorter timeout hands over more often).
func templateConfig() devstack.Config {
	return devstack.Config{
		Function: devstack.FunctionConfig{Timeout: 25 * time.Second},
		Queue: &devstack.QueueConfig{
			Function:          devstack.FunctionConfig{Timeout: 60 * time.Second},
			VisibilityTimeout: 370 * time.Second,
			MaxReceiveCount:   20,
		},
	}
}

// writeEndpoints prints the stack's endpoints as KEY=value lines.
func writeEndpoints(w io.Writer, s *devstack.Stack, envFile string) {
	q := s.Queue()
	fmt.Fprintf(w, "ZIM_URL=%s\n", s.ZIMURL())
	if s.APIURL() != s.ZIMURL() {
		fmt.Fprintf(w, "ZEGO_API_URL=%s  # the functions', through the latency proxy\n", s.APIURL())
	}
	if f := s.CertificateFile(); f != "" {
		fmt.Fprintf(w, "SSL_CERT_FILE=%s\n", f)
	}
	fmt.Fprintf(w, "AWS_ENDPOINT_URL_SECRETS_MANAGER=%s\n", s.FunctionSecretsManagerURL())
	fmt.Fprintf(w, "AWS_ENDPOINT_URL_SQS=%s\n", s.SecretsManagerURL())
	fmt.Fprintf(w, "AWS_ENDPOINT_URL_DYNAMODB=%s  # the functions', through the DynamoDB fault proxy (moto_server's is AWS_ENDPOINT_URL_SQS)\n", s.FunctionDynamoDBURL())
	fmt.Fprintf(w, "ZEGO_STATE_TABLE=%s\n", s.StateTableName())
	fmt.Fprintf(w, "ZEGO_SECRET_ID=%s\n", s.SecretID())
	fmt.Fprintf(w, "ZEGO_JOB_QUEUE_URL=%s\n", q.URL)
	fmt.Fprintf(w, "DEAD_LETTER_QUEUE_URL=%s\n", q.DeadLetterURL)
	for _, f := range s.APIFunctions() {
		fmt.Fprintf(w, "API_FUNCTION_INVOKE_URL=%s%s  # %s\n", f.URL, devstack.InvokePath, f.Name)
	}
	for _, f := range s.QueueFunctions() {
		fmt.Fprintf(w, "QUEUE_FUNCTION_INVOKE_URL=%s%s  # %s\n", f.URL, devstack.InvokePath, f.Name)
	}
	fmt.Fprintf(w, "SAM_ENV_VARS=%s\n", envFile)
}

// writeSAMEnv writes an env-vars file for `sam local invoke --env-vars`,
// per function logical id, pointing at this stack: each container sam local
// starts is one instance, with the environment the template gives that
// function's instances (the shared table and its budget, no static rate).
func writeSAMEnv(path string, s *devstack.Stack) error {
	b, err := json.MarshalIndent(samEnv(s), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// samEnv is the env-vars file's content.
func samEnv(s *devstack.Stack) map[string]map[string]string {
	q := s.Queue()
	with := func(floor string) map[string]string {
		return map[string]string{
			"ZEGO_API_URL":                     s.APIURL(),
			"ZEGO_SECRET_ID":                   s.SecretID(),
			"ZEGO_JOB_QUEUE_URL":               q.URL,
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.FunctionSecretsManagerURL(),
			"AWS_ENDPOINT_URL_SQS":             s.SecretsManagerURL(),
			"AWS_ENDPOINT_URL_DYNAMODB":        s.FunctionDynamoDBURL(),
			"ZEGO_STATE_TABLE":                 s.StateTableName(),
			"ZEGO_RATE_BUDGET":                 strconv.Itoa(s.RateBudget()),
			"ZEGO_RATE_FLOOR":                  floor,
			"ZEGO_RATE_FLOOR_TOTAL":            strconv.Itoa(len(s.APIFunctions())),
		}
	}
	return map[string]map[string]string{"ApiFunction": with("1"), "QueueFunction": with("0")}
}

func writeLine(w io.Writer, b []byte) {
	_, _ = w.Write(b)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		fmt.Fprintln(w)
	}
}

// latencyFlag adds -latency to fs.
func latencyFlag(fs *flag.FlagSet) *string {
	return fs.String("latency", "off", "off: loopback; default: HTTPS to the ZIM server, and ZEGO's and Secrets Manager's round trips from us-east-1 (docs/performance.md)")
}

// applyLatency sets cfg's network for a -latency value.
func applyLatency(cfg *devstack.Config, v string) error {
	switch v {
	case "off":
		return nil
	case "default":
		if cfg.Target == devstack.TargetAWS {
			return fmt.Errorf("-latency applies to the local stack only (unset %s)", devstack.TargetEnv)
		}
		p := netem.DefaultProfile()
		cfg.TLS, cfg.Latency = true, &p
		return nil
	default:
		return fmt.Errorf("-latency %q: want off or default", v)
	}
}
