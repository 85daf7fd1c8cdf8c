// Package devstack runs the function locally the way the template deploys
// it, without Docker: the real bootstrap under AWS's Lambda Runtime Interface
// Emulator (aws-lambda-rie, pinned in tools/go.mod), once per function, beside
// the local ZIM server (cmd/zimserver, seeded from dev/zim-seed.json) and a
// local Secrets Manager and SQS (moto_server) holding the demo secret.
// cmd/devstack (`make demo`, `make invoke`, `make stack`) and the end-to-end
// tests in e2e/ are built on it.
//
// # Functions and the queue
//
// Start runs the api function (HTTP API and direct invokes; Invoke's
// target). With Config.Queue it also creates a job queue and its dead-letter
// queue in moto's SQS (the template's redrive settings), runs the queue
// function as QueueConfig.Instances emulators, and a poller with the
// semantics of Lambda's SQS event source mapping (see poller.go). The
// functions' environments differ only in ZEGO_RATE_LIMIT; each has
// ZEGO_JOB_QUEUE_URL and AWS_ENDPOINT_URL_SQS. Tests send with Queue.Send,
// wait with Queue.WaitDrained, and read what happened from Queue.Batches,
// Queue.Receives, Queue.DeadLetters and the ZIM server's request log
// (Stack.Admin).
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
// errorType in the body, and fails on concurrent invocations, so Invoke
// serialises them. AWS_LAMBDA_FUNCTION_TIMEOUT sets the deadline the handler
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
