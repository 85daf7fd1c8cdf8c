package handler

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// inProcessZIM serves srv without a socket, so that a client inside a
// testing/synctest bubble reaches it on virtual time; every call takes latency.
func inProcessZIM(srv *zimtest.Server, latency time.Duration) (string, zim.Option) {
	return "http://127.0.0.1:1/zim/", zim.WithHTTPClient(&http.Client{Transport: inProcessTransport{srv, latency}})
}

type inProcessTransport struct {
	h       http.Handler
	latency time.Duration
}

func (t inProcessTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if t.latency > 0 {
		timer := time.NewTimer(t.latency)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		}
	}
	defer func() {
		if p := recover(); p != nil { // zimtest drops a connection by aborting its handler
			resp, err = nil, fmt.Errorf("connection dropped: %v", p)
		}
	}()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		// As net/http: a call whose context ended before the answer gets no answer.
		return nil, err
	}
	return rec.Result(), nil
}

// inProcess serves the harness's zimtest without a socket; build the harness
// inside the synctest bubble.
func inProcess() harnessOpt { return func(c *harnessConfig) { c.inProcess = true } }

// withLatency makes every in-process call take d.
func withLatency(d time.Duration) harnessOpt { return func(c *harnessConfig) { c.latency = d } }

// withQueue wires a job queue: s receives the continuations, url is ZEGO_JOB_QUEUE_URL.
func withQueue(s job.Sender, url string) harnessOpt {
	return func(c *harnessConfig) { c.handlerOpts = append(c.handlerOpts, WithJobQueue(s, url)) }
}

// memQueue is an in-memory job.Sender: it keeps the messages sent, or fails
// every send with err.
type memQueue struct {
	mu   sync.Mutex
	msgs []job.Message
	err  error
}

func (q *memQueue) Send(_ context.Context, m job.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.msgs = append(q.msgs, m)
	return nil
}

// take removes and returns the messages sent so far.
func (q *memQueue) take() []job.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}

// continuation decodes a sent message's body.
func continuation(t *testing.T, m job.Message) request.Request {
	t.Helper()
	req, err := request.Parse([]byte(m.Body))
	if err != nil || req.Continuation == nil {
		t.Fatalf("message %q is not a continuation: %v", m.Body, err)
	}
	return req
}

// deleteCalls counts the DeleteConv requests the server saw, and of them
// those answered "does not exist".
func deleteCalls(srv *zimtest.Server) (all, gone int) {
	for _, r := range srv.Requests() {
		if r.Action == "DeleteConv" {
			all++
			if r.Code == 660800002 {
				gone++
			}
		}
	}
	return all, gone
}
