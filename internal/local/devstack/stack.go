package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/time/rate"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// Target is what the function talks to.
type Target string

const (
	// TargetLocal runs a local ZIM server and a local Secrets Manager (moto_server).
	TargetLocal Target = "local"
	// TargetAWS runs the function with the caller's own environment: AWS
	// credentials chain, AWS_REGION, ZEGO_SECRET_ID, and the real ZEGO API.
	TargetAWS Target = "aws"
)

// TargetEnv is the environment variable that selects the target.
const TargetEnv = "ZEGO_TARGET"

// TargetFromEnv reads ZEGO_TARGET: unset, "" or "local" is TargetLocal, "aws" is TargetAWS.
func TargetFromEnv() (Target, error) {
	switch v := os.Getenv(TargetEnv); v {
	case "", string(TargetLocal):
		return TargetLocal, nil
	case string(TargetAWS):
		return TargetAWS, nil
	default:
		return "", fmt.Errorf("devstack: %s=%q: want %q or %q", TargetEnv, v, TargetLocal, TargetAWS)
	}
}

// DefaultSecretName is the Secrets Manager secret the local stack creates.
const DefaultSecretName = "zim-deleteconv/demo"

// Defaults for Config. StartTimeout only guards against a process that hangs:
// each wait ends as soon as the process is ready, and at once when it exits.
// It is generous because start-up is CPU-bound (moto_server took 17.5 s on a
// 2-core machine at load average 20) and a loaded CI machine must not fail a
// test that is not about start-up time.
const (
	DefaultStartTimeout = 2 * time.Minute
	DefaultStopGrace    = 5 * time.Second
)

// Config configures Start. The zero value runs the local stack from the
// checkout that holds the working directory.
type Config struct {
	// Root is the module root; found from the working directory when empty.
	Root string
	// Target is TargetLocal (the default) or TargetAWS.
	Target Target
	// Seed is the local ZIM server's seed file; default Root/dev/zim-seed.json.
	// Its first app's credentials become the demo secret.
	Seed string
	// SecretName is the secret created in the local Secrets Manager
	// (default DefaultSecretName).
	SecretName string
	// Function configures the api function: HTTP API and direct invokes
	// (Invoke's target), each of its APIInstances alike. Its Name is the
	// single instance's, or the instances' prefix ("api-1", "api-2", …).
	Function FunctionConfig
	// APIInstances is the api function's instance count, one emulator each:
	// ApiFunction's reserved concurrency (the template's ApiConcurrency).
	// Default 1, or DefaultAPIInstances with a queue (the stack as deployed).
	APIInstances int
	// RateBudget is ZEGO_RATE_BUDGET, the calls per second the whole stack
	// may send to ZEGO, and the HTTP API stage's throttle (rate and burst),
	// as the template sets both from its RateBudget (default
	// DefaultRateBudget).
	RateBudget int
	// NoStateTable runs the stack without the shared table: no
	// ZEGO_STATE_TABLE, so every function runs at its static
	// ZEGO_RATE_LIMIT (with a queue, by default APIInstanceRate per api
	// instance and DefaultQueueRate per queue instance). By default the
	// local stack creates the table (StateTable) in moto_server and every
	// function whose FunctionConfig.RateLimit is 0 gets ZEGO_STATE_TABLE,
	// the budget's variables and AWS_ENDPOINT_URL_DYNAMODB pointing at the
	// DynamoDB fault proxy (SetDynamoDBFault).
	NoStateTable bool
	// Queue, when set, adds the local job queue with its dead-letter queue,
	// the queue function (QueueConfig.Instances emulators) and the poller
	// that feeds it, as the template deploys them. Every function of the
	// stack then gets ZEGO_JOB_QUEUE_URL and AWS_ENDPOINT_URL_SQS.
	Queue *QueueConfig
	// LogDir receives one log file per process; default Root/build/devstack/logs.
	LogDir string
	// Bootstrap and ZIMServer are prebuilt binaries; built when empty.
	Bootstrap, ZIMServer string
	// StartTimeout bounds each readiness wait (default DefaultStartTimeout).
	StartTimeout time.Duration
	// StopGrace is how long Close waits after SIGTERM before SIGKILL
	// (default DefaultStopGrace).
	StopGrace time.Duration
	// Progress, when set, receives one line per start-up step.
	Progress io.Writer
	// TLS serves the local ZIM server over HTTPS (zimserver -tls, HTTP/2
	// and HTTP/1.1): the functions trust its certificate authority through
	// SSL_CERT_FILE (CertificateFile), and Admin trusts it too.
	TLS bool
	// HTTP1Only, with TLS, makes the ZIM server offer only HTTP/1.1
	// (zimserver -http1-only), like a ZEGO host without HTTP/2.
	HTTP1Only bool
	// Latency, when set, puts a latency-injecting proxy (internal/local/netem)
	// with the profile's links in front of the local ZIM server and the
	// local Secrets Manager; the functions reach both through them
	// (APIURL, FunctionSecretsManagerURL), while admin calls and SQS go
	// straight. With TLS and netem.DefaultProfile() the functions pay the
	// round trips of one in us-east-1 calling ZEGO. ZEGOConnections counts
	// the connections opened to the ZIM server.
	Latency *netem.Profile
}

// Stack is a running local development stack: the local ZIM server,
// moto_server holding the demo secret (and the queues), and each function
// under its own Lambda Runtime Interface Emulator (TargetAWS runs the api
// function only). Every process runs in its own process group, bound to
// 127.0.0.1. Close stops them all.
type Stack struct {
	cfg       Config
	rie       string
	bootstrap string
	appID     uint32
	zimURL    string

	zim     *child
	moto    *motoserver.Server
	motoLog *os.File
	sm      *secretsmanager.Client

	// With Config.TLS and Config.Latency (network.go).
	certFile           string
	adminHTTP          *http.Client
	zegoProxy, smProxy *netem.Proxy

	// The shared table (empty name without it), a client of it, and the
	// fault proxy the functions reach moto's DynamoDB through.
	table    TableDefinition
	ddb      *dynamodb.Client
	ddbProxy *netem.FaultProxy

	api   *apiPool
	stage *rate.Limiter

	queue      *Queue
	queueFns   []*Function
	pollerLog  *os.File
	stopPoller context.CancelFunc
	pollers    sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	functions []*Function

	closeOnce sync.Once
	closeErr  error
}

// Start starts the stack. On any failure it stops what it had started.
// ctx bounds the start-up only.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if cfg.Root, err = FindRoot(wd); err != nil {
			return nil, err
		}
	}
	if cfg.Target == "" {
		cfg.Target = TargetLocal
	}
	if cfg.Target != TargetLocal && cfg.Target != TargetAWS {
		return nil, fmt.Errorf("devstack: unknown target %q", cfg.Target)
	}
	if cfg.Seed == "" {
		cfg.Seed = filepath.Join(cfg.Root, "dev", "zim-seed.json")
	}
	if cfg.SecretName == "" {
		cfg.SecretName = DefaultSecretName
	}
	if cfg.LogDir == "" {
		cfg.LogDir = filepath.Join(cfg.Root, "build", "devstack", "logs")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.Function.Name == "" {
		cfg.Function.Name = "api"
	}
	if cfg.Queue != nil {
		if cfg.Target != TargetLocal {
			return nil, fmt.Errorf("devstack: the local queue runs in the local stack only (unset %s)", TargetEnv)
		}
		q := *cfg.Queue
		if err := q.setDefaults(); err != nil {
			return nil, err
		}
		cfg.Queue = &q
		if cfg.APIInstances == 0 {
			cfg.APIInstances = DefaultAPIInstances
		}
		// Without the table, the static split of the template before the
		// shared budget.
		if cfg.NoStateTable && cfg.Function.RateLimit == 0 {
			cfg.Function.RateLimit = APIInstanceRate
		}
		if cfg.NoStateTable && cfg.Queue.Function.RateLimit == 0 {
			cfg.Queue.Function.RateLimit = DefaultQueueRate
		}
	}
	if cfg.APIInstances <= 0 {
		cfg.APIInstances = 1
	}
	if cfg.RateBudget == 0 {
		cfg.RateBudget = DefaultRateBudget
	}
	if cfg.RateBudget < 1 || cfg.RateBudget > 20 {
		return nil, fmt.Errorf("devstack: rate budget %d: want 1 to 20 (ZEGO allows 20 calls per second per AppId)", cfg.RateBudget)
	}
	if cfg.Target != TargetLocal {
		cfg.NoStateTable = true
	}
	if (cfg.TLS || cfg.Latency != nil) && cfg.Target != TargetLocal {
		return nil, fmt.Errorf("devstack: TLS and latency apply to the local stack only (unset %s)", TargetEnv)
	}
	s := &Stack{cfg: cfg, stage: newStage(cfg.RateBudget)}

	// Everything that can be checked in a moment is, before the builds.
	if cfg.Target == TargetAWS {
		if _, err := s.env(cfg.Function, "api"); err != nil {
			return nil, err
		}
	} else {
		if _, err := exec.LookPath(motoserver.Binary); err != nil {
			return nil, fmt.Errorf("devstack: %w", motoserver.ErrNotFound)
		}
		app, err := readSeedApp(cfg.Seed)
		if err != nil {
			return nil, err
		}
		s.appID = app.AppID
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	// The emulator's build (about a minute the first time) runs beside the
	// function's and the ZIM server's.
	s.progress("building the pinned Lambda Runtime Interface Emulator (go tool, cached; the first build takes about a minute)")
	startRIEBuild(cfg.Root)
	if err := s.build(ctx); err != nil {
		return nil, err
	}
	if s.rie, err = FindRIE(ctx, cfg.Root); err != nil {
		return nil, err
	}

	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if cfg.Target == TargetLocal {
		if err := s.startZIMServer(ctx); err != nil {
			return nil, err
		}
		if err := s.startMoto(ctx); err != nil {
			return nil, err
		}
		if err := s.startProxies(); err != nil {
			return nil, err
		}
		if err := s.startTable(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Queue != nil {
		if err := s.startQueue(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.startAPIFunction(ctx); err != nil {
		return nil, err
	}
	if cfg.Queue != nil {
		if err := s.startQueueFunction(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startTable creates the shared table in moto and the fault proxy in front
// of moto's DynamoDB.
func (s *Stack) startTable(ctx context.Context) error {
	if s.cfg.NoStateTable {
		return nil
	}
	s.progress("creating the shared table (moto's DynamoDB) and the DynamoDB fault proxy")
	awsCfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.ddb = dynamodb.NewFromConfig(awsCfg)
	def := StateTable()
	if err := createTable(ctx, s.ddb, def); err != nil {
		return err
	}
	s.table = def
	if s.ddbProxy, err = netem.ListenFaults(s.moto.URL, 0); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// startAPIFunction starts the api function's instances.
func (s *Stack) startAPIFunction(ctx context.Context) error {
	n := s.cfg.APIInstances
	var fns []*Function
	for i := range n {
		fc := s.cfg.Function
		if fc.Name == "" {
			fc.Name = "api"
		}
		if n > 1 {
			fc.Name += "-" + strconv.Itoa(i+1)
		}
		f, err := s.startFunction(ctx, fc, "api")
		if err != nil {
			return err
		}
		fns = append(fns, f)
	}
	s.api = newAPIPool(fns)
	return nil
}

// startQueue creates the job queue and its dead-letter queue in moto.
func (s *Stack) startQueue(ctx context.Context) error {
	s.progress("creating the job queue and its dead-letter queue (moto's SQS)")
	awsCfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.queue, err = createQueue(ctx, sqs.NewFromConfig(awsCfg), *s.cfg.Queue)
	return err
}

// startQueueFunction starts the queue function's instances and a poller
// worker for each.
func (s *Stack) startQueueFunction(ctx context.Context) error {
	qc := s.cfg.Queue
	for i := range qc.Instances {
		fc := qc.Function
		fc.Name = "queue-" + strconv.Itoa(i+1)
		f, err := s.startFunction(ctx, fc, "queue")
		if err != nil {
			return err
		}
		s.queueFns = append(s.queueFns, f)
	}
	f, err := os.Create(filepath.Join(s.cfg.LogDir, "poller.log"))
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.pollerLog = f
	s.queue.poller = newPoller(s.queue, f)
	pctx, cancel := context.WithCancel(context.Background())
	s.stopPoller = cancel
	s.progress("polling %s for %d queue function instance(s)", s.queue.Name, len(s.queueFns))
	for _, fn := range s.queueFns {
		s.pollers.Go(func() { s.queue.poller.run(pctx, fn) })
	}
	return nil
}

func (s *Stack) progress(format string, args ...any) {
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, "devstack: "+format+"\n", args...)
	}
}

// build builds what is not prebuilt.
func (s *Stack) build(ctx context.Context) error {
	s.bootstrap = s.cfg.Bootstrap
	needZIM := s.cfg.Target == TargetLocal && s.cfg.ZIMServer == ""
	if s.bootstrap != "" && !needZIM {
		return nil
	}
	what := "the function"
	if needZIM {
		what += " and the local ZIM server"
	}
	s.progress("building %s (go build, incremental)", what)
	// One after the other: the second reuses what the first compiled.
	var err error
	if s.bootstrap == "" {
		if s.bootstrap, err = BuildFunction(ctx, s.cfg.Root, BinDir(s.cfg.Root)); err != nil {
			return err
		}
	}
	if needZIM {
		s.cfg.ZIMServer, err = BuildZIMServer(ctx, s.cfg.Root, BinDir(s.cfg.Root))
	}
	return err
}

func (s *Stack) startZIMServer(ctx context.Context) error {
	s.progress("starting the local ZIM server")
	urlCh := make(chan string, 1)
	onLine := func(line string) {
		if u, ok := strings.CutPrefix(line, "ZIM_URL="); ok {
			select {
			case urlCh <- strings.TrimSpace(u):
			default:
			}
		}
	}
	argv := append([]string{s.cfg.ZIMServer, "-addr", "127.0.0.1:0", "-seed", s.cfg.Seed}, s.zimServerTLSArgs()...)
	c, err := startChild("zimserver", argv, os.Environ(), s.cfg.Root, s.cfg.LogDir, onLine)
	if err != nil {
		return err
	}
	s.zim = c
	t := time.NewTimer(s.cfg.StartTimeout)
	defer t.Stop()
	select {
	case s.zimURL = <-urlCh:
		return s.trustZIMServer()
	case <-c.exited:
		return fmt.Errorf("devstack: %w", c.exitedErr())
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("devstack: zimserver printed no ZIM_URL line within %v", s.cfg.StartTimeout)
	}
}

func (s *Stack) startMoto(ctx context.Context) error {
	s.progress("starting the local Secrets Manager (moto_server)")
	f, err := os.Create(filepath.Join(s.cfg.LogDir, "moto_server.log"))
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.motoLog = f
	s.moto, err = motoserver.Start(ctx,
		motoserver.WithOutput(f, f),
		motoserver.WithReadyTimeout(s.cfg.StartTimeout),
		motoserver.WithStopGrace(s.cfg.StopGrace))
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	awsCfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.sm = secretsmanager.NewFromConfig(awsCfg)
	app, err := readSeedApp(s.cfg.Seed)
	if err != nil {
		return err
	}
	value, err := SecretJSON(app.AppID, app.ServerSecret)
	if err != nil {
		return err
	}
	if _, err := s.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(s.cfg.SecretName),
		Description:  aws.String("ZEGO credentials of the local ZIM server (demo)"),
		SecretString: aws.String(value),
	}); err != nil {
		return fmt.Errorf("devstack: creating the demo secret %q: %w", s.cfg.SecretName, err)
	}
	return nil
}

// StartFunction starts another emulated function beside the default one,
// sharing the stack's ZIM server and Secrets Manager: for a different
// environment (another secret id, a shorter deadline). Close stops it.
func (s *Stack) StartFunction(ctx context.Context, fc FunctionConfig) (*Function, error) {
	if fc.Name == "" {
		fc.Name = "api"
	}
	return s.startFunction(ctx, fc, fc.Name)
}

// Env is the environment StartFunction gives fc's bootstrap (through the
// emulator), for running the same bootstrap under another harness.
func (s *Stack) Env(fc FunctionConfig) ([]string, error) {
	if fc.Name == "" {
		fc.Name = "api"
	}
	if fc.Timeout <= 0 {
		fc.Timeout = DefaultFunctionTimeout
	}
	return s.env(fc, fc.Name)
}

// startFunction starts fc running as AWS_LAMBDA_FUNCTION_NAME deleteconv-role.
func (s *Stack) startFunction(ctx context.Context, fc FunctionConfig, role string) (*Function, error) {
	if fc.Timeout <= 0 {
		fc.Timeout = DefaultFunctionTimeout
	}
	env, err := s.env(fc, role)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	for _, f := range s.functions {
		if f.Name == fc.Name {
			s.mu.Unlock()
			return nil, fmt.Errorf("devstack: a function named %q is already running", fc.Name)
		}
	}
	s.mu.Unlock()

	s.progress("starting the Lambda Runtime Interface Emulator with the function (%s)", fc.Name)
	bootstrap := s.bootstrap
	if fc.Bootstrap != "" {
		bootstrap = fc.Bootstrap
	}
	f, err := startFunction(ctx, fc.Name, s.rie, bootstrap, env, s.cfg.LogDir, s.cfg.StartTimeout)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.Join(errClosed, f.rie.stop(s.cfg.StopGrace))
	}
	s.functions = append(s.functions, f)
	return f, nil
}

// timeoutSeconds is AWS_LAMBDA_FUNCTION_TIMEOUT's value: whole seconds, at least 1.
func timeoutSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// env is a function's environment: for TargetLocal the contract's
// variables pointing at the local services, for TargetAWS the caller's own;
// then the function's name, timeout and rate, and fc.Env last.
func (s *Stack) env(fc FunctionConfig, role string) ([]string, error) {
	var env []string
	if s.cfg.Target == TargetAWS {
		env = awsEnv()
	} else {
		env = s.localEnv()
	}
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+FunctionName+"-"+role,
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+timeoutSeconds(fc.Timeout),
	)
	if fc.RateLimit != 0 {
		env = append(env, "ZEGO_RATE_LIMIT="+strconv.FormatFloat(fc.RateLimit, 'f', -1, 64))
	} else if s.table.Name != "" {
		env = append(env, s.budgetEnv(role)...)
	}
	env = append(env, fc.Env...)
	if s.cfg.Target != TargetAWS {
		return env, nil
	}
	if lookup(env, "ZEGO_SECRET_ID") == "" {
		return nil, fmt.Errorf("devstack: %s=%s needs ZEGO_SECRET_ID: the name or ARN of your Secrets Manager secret holding {\"AppId\", \"ServerSecret\"}", TargetEnv, TargetAWS)
	}
	if lookup(env, "AWS_REGION") == "" {
		r := lookup(env, "AWS_DEFAULT_REGION")
		if r == "" {
			return nil, fmt.Errorf("devstack: %s=%s needs AWS_REGION: the region of your secret", TargetEnv, TargetAWS)
		}
		env = append(env, "AWS_REGION="+r)
	}
	return env, nil
}

// budgetEnv is the shared budget's environment as the template gives it to
// a function: the table, the stack's budget, the instance's floor (1 for
// ApiFunction, 0 for QueueFunction) and the sum of every instance's floor
// (ApiConcurrency in the template: APIInstances here).
func (s *Stack) budgetEnv(role string) []string {
	floor := "1"
	if role == "queue" {
		floor = "0"
	}
	return []string{
		"ZEGO_STATE_TABLE=" + s.table.Name,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.FunctionDynamoDBURL(),
		"ZEGO_RATE_BUDGET=" + strconv.Itoa(s.cfg.RateBudget),
		"ZEGO_RATE_FLOOR=" + floor,
		"ZEGO_RATE_FLOOR_TOTAL=" + strconv.Itoa(s.cfg.APIInstances),
	}
}

// localEnv is the local stack's environment: the caller's without any AWS,
// ZEGO or Lambda setting (so a developer's own profile or endpoint never
// leaks in), then the contract's variables.
func (s *Stack) localEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "ZEGO_") || strings.HasPrefix(k, "_") ||
			strings.HasPrefix(k, "LAMBDA_") || k == "LOG_LEVEL" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"ZEGO_API_URL="+s.zimURL,
		"ZEGO_SECRET_ID="+s.cfg.SecretName,
	)
	env = append(env, s.moto.Env()...)
	if s.queue != nil {
		env = append(env, "ZEGO_JOB_QUEUE_URL="+s.queue.URL)
	}
	return s.networkEnv(env)
}

// awsEnv is TargetAWS's environment: the caller's own.
func awsEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		// AWS_LAMBDA_MAX_CONCURRENCY would switch the emulator to another mode.
		if k, _, _ := strings.Cut(kv, "="); k != "AWS_LAMBDA_MAX_CONCURRENCY" {
			env = append(env, kv)
		}
	}
	return env
}

// lookup returns the last value of key in env, as exec would use it.
func lookup(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Queue is the local job queue; nil without Config.Queue.
func (s *Stack) Queue() *Queue { return s.queue }

// QueueFunctions are the queue function's instances, one emulator each.
func (s *Stack) QueueFunctions() []*Function { return slices.Clone(s.queueFns) }

// Function returns the api function's first instance. Its Invoke
// serialises its own callers; Stack.Invoke spreads them over every instance.
func (s *Stack) Function() *Function {
	if s.api == nil {
		return nil
	}
	return s.api.fns[0]
}

func (s *Stack) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Target is the stack's target.
func (s *Stack) Target() Target { return s.cfg.Target }

// ZIMURL is the local ZIM server's base URL (also its admin API's); "" for TargetAWS.
func (s *Stack) ZIMURL() string { return s.zimURL }

// AppID is the local ZIM server's app (the seed's first), whose credentials the secret holds.
func (s *Stack) AppID() uint32 { return s.appID }

// SecretID is the secret the function reads in the local stack.
func (s *Stack) SecretID() string { return s.cfg.SecretName }

// SecretsManagerURL is the local Secrets Manager's endpoint; "" for TargetAWS.
func (s *Stack) SecretsManagerURL() string {
	if s.moto == nil {
		return ""
	}
	return s.moto.URL
}

// SecretsManager is a client of the local Secrets Manager; nil for TargetAWS.
func (s *Stack) SecretsManager() *secretsmanager.Client { return s.sm }

// LogDir is the folder holding one log file per process.
func (s *Stack) LogDir() string { return s.cfg.LogDir }

// ZIMServerOutput returns the local ZIM server's output lines so far (JSON logs).
func (s *Stack) ZIMServerOutput() []string {
	if s.zim == nil {
		return nil
	}
	return append(s.zim.stdout.since(0), s.zim.stderr.since(0)...)
}

// Processes lists every process the stack started and is still running,
// directly or through a child (the emulator's bootstrap). Tests use it to
// check that Close leaves none behind (see Running).
func (s *Stack) Processes() []Process {
	s.mu.Lock()
	fns := slices.Clone(s.functions)
	s.mu.Unlock()
	var out []Process
	if s.zim != nil {
		out = append(out, s.zim.processes()...)
	}
	if s.moto != nil {
		out = append(out, Process{Name: motoserver.Binary, PID: s.moto.PID(), PGID: s.moto.PID()})
		if table, err := processTable(); err == nil {
			for _, e := range descendants(table, s.moto.PID()) {
				out = append(out, Process{Name: e.Name, PID: e.PID, PGID: e.PGID})
			}
		}
	}
	for _, f := range fns {
		out = append(out, f.rie.processes()...)
	}
	return slices.DeleteFunc(out, func(p Process) bool { return !Running(p.PID) })
}

// Close stops every process the stack started, the functions first: SIGTERM
// to each process group, SIGKILL after the grace period. It waits until they
// are gone, and is safe to call more than once and from several goroutines
// (a signal handler and a deferred call).
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		fns := s.functions
		s.mu.Unlock()
		var errs []error
		if s.stopPoller != nil {
			s.stopPoller()
			s.pollers.Wait()
			errs = append(errs, s.pollerLog.Close())
		}
		for i := len(fns) - 1; i >= 0; i-- {
			errs = append(errs, fns[i].rie.stop(s.cfg.StopGrace))
		}
		errs = append(errs, s.closeProxies())
		if s.zim != nil {
			errs = append(errs, s.zim.stop(s.cfg.StopGrace))
		}
		if s.moto != nil {
			s.moto.Stop()
		}
		if s.motoLog != nil {
			errs = append(errs, s.motoLog.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// seedApp is an app of the ZIM server's seed file.
type seedApp struct {
	AppID        uint32
	ServerSecret string
}

func readSeedApp(path string) (seedApp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return seedApp{}, fmt.Errorf("devstack: ZIM seed: %w", err)
	}
	var seed struct {
		Apps []struct {
			AppID        json.Number `json:"AppId"`
			ServerSecret string      `json:"ServerSecret"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b, &seed); err != nil {
		return seedApp{}, fmt.Errorf("devstack: ZIM seed %s: %w", path, err)
	}
	if len(seed.Apps) == 0 {
		return seedApp{}, fmt.Errorf("devstack: ZIM seed %s: no apps", path)
	}
	id, err := strconv.ParseUint(seed.Apps[0].AppID.String(), 10, 32)
	if err != nil || id == 0 {
		return seedApp{}, fmt.Errorf("devstack: ZIM seed %s: apps[0].AppId is not a 32-bit app id", path)
	}
	return seedApp{AppID: uint32(id), ServerSecret: seed.Apps[0].ServerSecret}, nil
}

// SecretJSON is the secret's SecretString for the given credentials, in the
// form the contract names: {"AppId": n, "ServerSecret": "..."}.
func SecretJSON(appID uint32, serverSecret string) (string, error) {
	b, err := json.Marshal(struct {
		AppID        uint32 `json:"AppId"`
		ServerSecret string `json:"ServerSecret"`
	}{appID, serverSecret})
	return string(b), err
}

// Admin is a client of the local ZIM server's admin API: seed conversations,
// inject faults, and read every request the server saw with its arrival
// time (Requests). Nil for TargetAWS.
func (s *Stack) Admin() *zimtest.AdminClient {
	if s.zimURL == "" {
		return nil
	}
	if s.adminHTTP != nil {
		return zimtest.NewAdminClient(s.zimURL, zimtest.WithAdminHTTPClient(s.adminHTTP))
	}
	return zimtest.NewAdminClient(s.zimURL)
}

// SeedConversations stores n conversations of user in the local ZIM server's
// app and returns them: one-on-one ones with ConvIds "peer-000001", …, and
// every fourth a group "#group-000004", ….
func (s *Stack) SeedConversations(ctx context.Context, user string, n int) ([]zim.Conversation, error) {
	admin := s.Admin()
	if admin == nil {
		return nil, errors.New("devstack: no local ZIM server to seed")
	}
	convs := make([]zim.Conversation, n)
	for i := range convs {
		convs[i] = zim.Conversation{ConvID: fmt.Sprintf("peer-%06d", i+1), ConvType: zim.ConvTypePeer}
		if (i+1)%4 == 0 {
			convs[i] = zim.Conversation{ConvID: fmt.Sprintf("#group-%06d", i+1), ConvType: zim.ConvTypeGroup}
		}
	}
	// In parts, so that a large seed stays well under the admin API's body limit.
	for start := 0; start < n; start += 10000 {
		if err := admin.Seed(ctx, s.appID, user, convs[start:min(start+10000, n)]...); err != nil {
			return nil, fmt.Errorf("devstack: seeding %d conversations of %s: %w", n, user, err)
		}
	}
	return convs, nil
}
