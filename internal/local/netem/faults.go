package netem

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what a FaultProxy does with each request.
type Fault int

const (
	// Pass forwards every request as it is.
	Pass Fault = iota
	// Fail answers every request at once with HTTP 500 and an
	// InternalServerError body in the AWS JSON protocol's error shape
	// (DynamoDB's), without forwarding it.
	Fail
	// Drop closes every request's connection without an answer.
	Drop
	// Slow forwards every request after FaultProxy's delay (default 1 s).
	Slow
)

func (f Fault) String() string {
	switch f {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Drop:
		return "drop"
	case Slow:
		return "slow"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ParseFault parses a Fault's name (pass, fail, drop, slow).
func ParseFault(s string) (Fault, error) {
	for _, f := range []Fault{Pass, Fail, Drop, Slow} {
		if f.String() == s {
			return f, nil
		}
	}
	return Pass, fmt.Errorf("netem: unknown fault %q: want pass, fail, drop or slow", s)
}

// DefaultSlowDelay is how long Slow holds each request.
const DefaultSlowDelay = time.Second

// internalServerError is DynamoDB's answer to a request it failed on its side
// (the AWS JSON 1.0 protocol's error shape); the SDK retries it.
const internalServerError = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (injected by the local stack's fault proxy)"}`

// FaultProxy is an HTTP reverse proxy in front of an AWS-style JSON API (the
// local stack puts it between the functions and moto's DynamoDB) whose
// behaviour can be switched at run time with Set: Pass, Fail, Drop or Slow.
// Its methods are safe for concurrent use.
type FaultProxy struct {
	ln    net.Listener
	srv   *http.Server
	delay time.Duration

	fault    atomic.Int64
	requests atomic.Int64
	faulted  atomic.Int64

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// ListenFaults starts a FaultProxy on a free port of 127.0.0.1 forwarding to
// target, a base URL such as http://127.0.0.1:5000. It starts in Pass; Slow
// holds each request for delay (DefaultSlowDelay when delay is 0).
func ListenFaults(target string, delay time.Duration) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("netem: %q is not a URL with a host", target)
	}
	if delay < 0 {
		return nil, fmt.Errorf("netem: negative delay %v", delay)
	}
	if delay == 0 {
		delay = DefaultSlowDelay
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netem: %w", err)
	}
	p := &FaultProxy{ln: ln, delay: delay, done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "netem: the target did not answer", http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *FaultProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		switch p.Fault() {
		case Fail:
			p.faulted.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(internalServerError))
			return
		case Drop:
			p.faulted.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // closes the connection without an answer
		case Slow:
			p.faulted.Add(1)
			t := time.NewTimer(p.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Set switches what the proxy does with the requests that arrive from now on.
func (p *FaultProxy) Set(f Fault) { p.fault.Store(int64(f)) }

// Fault is the proxy's current behaviour.
func (p *FaultProxy) Fault() Fault { return Fault(p.fault.Load()) }

// URL is the proxy's base URL, http://127.0.0.1:PORT.
func (p *FaultProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Requests is how many requests the proxy has received; Faulted how many of
// them it failed, dropped or delayed.
func (p *FaultProxy) Requests() int { return int(p.requests.Load()) }

// Faulted is how many requests the proxy has failed, dropped or delayed.
func (p *FaultProxy) Faulted() int { return int(p.faulted.Load()) }

// Close stops the proxy and closes its connections, dropping requests in
// flight. Calling it more than once is harmless.
func (p *FaultProxy) Close() error {
	p.closeOnce.Do(func() {
		if err := p.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.closeErr = err
		}
		<-p.done
	})
	return p.closeErr
}
