// Package devstack runs the function locally the way the template deploys
// it, without Docker: the real bootstrap under AWS's Lambda Runtime Interface
// Emulator (aws-lambda-rie, pinned in tools/go.mod), once per function, beside
// the local ZIM server (cmd/zimserver, seeded from dev/zim-seed.json) and a
// local Secrets Manager, SQS and DynamoDB (moto_server) holding the demo
// secret and the shared table.
// cmd/devstack (`make demo`, `make invoke`, `make stack`) and the end-to-end
// tests in e2e/ are built on it.
//
// # Functions and the queue
//
// Start runs the api function (HTTP API and direct invokes) as
// Config.APIInstances emulators. With Config.Queue it also creates a job
// queue and its dead-letter queue in moto's SQS (the template's redrive
// settings), runs the queue function as QueueConfig.Instances emulators, and
// a poller with the semantics of Lambda's SQS event source mapping (see
// poller.go). With a queue the stack is the template's topology at its
// defaults: 2 api instances (ApiConcurrency) and 2 queue instances. Each
// function has ZEGO_JOB_QUEUE_URL and AWS_ENDPOINT_URL_SQS. Tests send with
// Queue.Send, wait with Queue.WaitDrained, and read what happened from
// Queue.Batches, Queue.Receives, Queue.DeadLetters and the ZIM server's
// request log (Stack.Admin).
//
// # The shared table and the rate budget
//
// The local stack creates the shared table in moto's DynamoDB as the
// template declares it (StateTable: partition key PK of type S, TTL
// attribute ExpiresAt) and gives every function the template's
// environment: ZEGO_STATE_TABLE, AWS_ENDPOINT_URL_DYNAMODB, ZEGO_RATE_BUDGET
// (Config.RateBudget, default 20), ZEGO_RATE_FLOOR (1 for an api instance, 0
// for a queue instance) and ZEGO_RATE_FLOOR_TOTAL (the api instances), and
// no ZEGO_RATE_LIMIT. A function with FunctionConfig.RateLimit, or every
// function with Config.NoStateTable, runs at a static ZEGO_RATE_LIMIT
// instead, without the table. The functions reach DynamoDB through a
// netem.FaultProxy: SetDynamoDBFault makes every call pass, fail (HTTP 500
// InternalServerError), drop its connection or take 1 s.
//
// # Invoking the api function
//
// One emulator serves one invocation at a time (it fails on concurrent
// ones, as one Lambda instance never sees them). TryInvoke is Lambda's
// synchronous invoke with reserved concurrency: a free instance, or
// ErrTooManyRequests (429 TooManyRequestsException) at once when every
// instance is busy. Invoke waits for a free instance instead, like a caller
// that retries the throttle. CallHTTP is an HTTP API call: the stage's
// throttle first (a token bucket of RateBudget per second with a burst of
// RateBudget, as the template sets it; 429 Too Many Requests when empty),
// then TryInvoke; a throttled invoke is API Gateway's 500, as on AWS.
//
// # TLS and latency
//
// Config.TLS serves the ZIM server over HTTPS (zimserver -tls); the
// functions trust its certificate authority through SSL_CERT_FILE
// (LogDir/zim-ca.pem) and Admin trusts it too. Config.Latency puts an
// internal/local/netem proxy with the profile's links in front of the ZIM server
// and another in front of moto's Secrets Manager: the functions get
// ZEGO_API_URL and AWS_ENDPOINT_URL_SECRETS_MANAGER pointing at the proxies
// (APIURL, FunctionSecretsManagerURL), while the admin API, the secret's
// creation and SQS are reached directly, so they neither wait nor count.
// ZEGOConnections is the ZEGO proxy's count of accepted connections.
// FunctionConfig.Bootstrap runs another build beside the stack's, under the
// same conditions. cmd/devstack's -latency default sets both options with
// netem.DefaultProfile().
//
// # Processes
//
// Start builds the emulator (FindRIE: go tool, cached), the bootstrap and the
// ZIM server under build/devstack/bin (go build relinks only what changed),
// then starts each process in its own process group, bound to 127.0.0.1 on
// free ports, and waits for each to be ready by polling. Every process's output goes to a file under LogDir and
// into memory: Function.Logs and InvokeResult.Logs hold the function's JSON
// lines. Close stops everything, the bootstrap included (the emulator runs it
// in a process group of its own and leaves it running when it is stopped),
// and Processes with Running let tests check that nothing is left. On Linux
// the direct children are also killed by the kernel if this process dies
// without closing the stack.
//
// # The emulator
//
// The emulator starts the bootstrap on the first invocation (InvokeResult
// reports that cold start), answers a function error as HTTP 200 with
// errorType in the body, and fails on concurrent invocations, so
// Function.Invoke serialises them. AWS_LAMBDA_FUNCTION_TIMEOUT sets the deadline the handler
// sees; past it the emulator answers "Task timed out", reported here as
// Lambda does, with errorType Sandbox.Timedout.
//
// # Targets
//
// TargetLocal (the default) gives the function the contract's environment
// pointing at the local services, and none of the caller's AWS or ZEGO
// settings. TargetAWS (ZEGO_TARGET=aws) starts no local service and runs the
// function with the caller's own environment: credentials chain, AWS_REGION,
// ZEGO_SECRET_ID, and ZEGO_API_URL or the real ZEGO API by default.
package devstack
