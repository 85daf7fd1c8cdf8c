package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
)

// heldTimeout bounds init and the invocation of a held function.
const heldTimeout = 30 * time.Second

// held is what heldInvoke measured.
type held struct {
	init   time.Duration // process start → the runtime's first GET /next
	invoke time.Duration // the event handed over → its answer posted
	body   []byte        // the answer
	logs   []devstack.LogRecord
}

// heldInvoke runs bootstrap under a Runtime API of perfbench's own, the way a
// provisioned-concurrency environment runs: init to the runtime's first
// request for an event, then nothing for pause, then one invocation. The
// emulator cannot hold an initialised environment: it starts the process on
// the first invocation and hands that invocation over as soon as init ends
// (its managed-instances mode, which initialises ahead, only runs a
// bootstrap found under /var/task, /var/runtime or /opt).
func heldInvoke(ctx context.Context, bootstrap string, env []string, pause time.Duration, event []byte) (held, error) {
	var h held
	api := newRuntimeAPI()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return h, err
	}
	srv := &http.Server{Handler: api.mux(), ReadHeaderTimeout: heldTimeout}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	// The process's output copier writes these while perfbench may read them.
	var stdout, stderr testutil.Buffer
	cmd := exec.CommandContext(ctx, bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return h, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			<-exited // and its output copied
		}
	}
	defer stop()
	fail := func(what string, err error) (held, error) {
		return h, fmt.Errorf("%s: %w; stderr: %s", what, err, snippet(stderr.String()))
	}

	t := time.NewTimer(heldTimeout)
	defer t.Stop()
	select {
	case at := <-api.ready:
		h.init = at.Sub(start)
	case b := <-api.initErr:
		return fail("init", fmt.Errorf("the runtime reported an init error: %s", snippet(string(b))))
	case err := <-exited:
		exited <- err
		return fail("init", fmt.Errorf("the bootstrap exited: %v", err))
	case <-t.C:
		return fail("init", errors.New("no request for an event in time"))
	case <-ctx.Done():
		return h, ctx.Err()
	}
	if err := sleep(ctx, pause); err != nil {
		return h, err
	}

	handed := time.Now()
	api.events <- event
	select {
	case a := <-api.answers:
		h.invoke = a.at.Sub(handed)
		h.body = a.body
		if a.failed {
			return fail("invocation", fmt.Errorf("function error: %s", snippet(string(a.body))))
		}
	case err := <-exited:
		exited <- err
		return fail("invocation", fmt.Errorf("the bootstrap exited: %v", err))
	case <-t.C:
		return fail("invocation", errors.New("no answer in time"))
	case <-ctx.Done():
		return h, ctx.Err()
	}
	// The process wrote its log lines before it posted the answer; once it
	// has been waited for, they have all been copied.
	stop()
	h.logs = jsonLines(stdout.String())
	return h, nil
}

// runtimeAnswer is a posted answer.
type runtimeAnswer struct {
	at     time.Time
	body   []byte
	failed bool // posted to /error
}

// runtimeAPI is the part of the Lambda Runtime API that a Go runtime uses:
// next, response, error and init/error.
type runtimeAPI struct {
	ready   chan time.Time // the first GET /next, when it arrived
	events  chan []byte    // the event for a waiting GET /next
	answers chan runtimeAnswer
	initErr chan []byte
	once    sync.Once
	seq     int
}

func newRuntimeAPI() *runtimeAPI {
	return &runtimeAPI{
		ready:   make(chan time.Time, 1),
		events:  make(chan []byte),
		answers: make(chan runtimeAnswer, 1),
		initErr: make(chan []byte, 1),
	}
}

func (a *runtimeAPI) mux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		a.once.Do(func() { a.ready <- time.Now() })
		select {
		case ev := <-a.events:
			a.seq++ // one invocation at a time: the runtime asks again only after answering
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("held-%04d", a.seq))
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(devstack.DefaultFunctionTimeout).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:"+devstack.FunctionName+"-api")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(ev)
		case <-r.Context().Done():
		}
	})
	answer := func(failed bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			at := time.Now()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			select {
			case a.answers <- runtimeAnswer{at: at, body: b, failed: failed}:
			default:
			}
		}
	}
	m.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", answer(false))
	m.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", answer(true))
	m.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		select {
		case a.initErr <- b:
		default:
		}
	})
	return m
}

// jsonLines parses each line of out that is a JSON object.
func jsonLines(out string) []devstack.LogRecord {
	var recs []devstack.LogRecord
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r devstack.LogRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

func snippet(s string) string {
	const n = 400
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
