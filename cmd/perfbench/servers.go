package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

// zegoServer is what the local ZIM server offers the function: whether ZEGO's
// hosts speak HTTP/2 is not known, so the first invocation is measured
// against each.
type zegoServer int

const (
	serverHTTP2      zegoServer = iota // HTTPS offering h2 and http/1.1: the latency profile's own stack
	serverHTTP1TLS                     // HTTPS offering only http/1.1 (zimserver -http1-only)
	serverHTTP1Plain                   // plain HTTP/1.1
	zegoServers
)

func (z zegoServer) String() string {
	return [...]string{"HTTPS, HTTP/2 offered", "HTTPS, HTTP/1.1 only", "plain HTTP/1.1"}[z]
}

func (z zegoServer) slug() string { return [...]string{"h2", "h1tls", "h1plain"}[z] }

func (z zegoServer) tls() bool { return z != serverHTTP1Plain }

// parseServers reads -servers: a comma-separated list of h1tls and h1plain.
func parseServers(v string) ([]zegoServer, error) {
	var out []zegoServer
	for _, s := range strings.Split(v, ",") {
		switch strings.TrimSpace(s) {
		case "":
		case "h1tls":
			out = append(out, serverHTTP1TLS)
		case "h1plain":
			out = append(out, serverHTTP1Plain)
		default:
			return nil, fmt.Errorf("-servers: %q: want h1tls or h1plain", s)
		}
	}
	return out, nil
}

// serverResults are first invocations against one kind of ZEGO server.
type serverResults struct {
	server    zegoServer
	first     [variants][]float64 // process start → answer, ms
	firstCall [variants][]float64 // the function's latencyMs of its first DeleteConv call
	conns     [variants][]int     // connections each first invocation opened to ZEGO
}

// firstPerServer measures first invocations of the function before and after
// against a ZIM server of kind z, on a stack of its own with the profile.
func (b *bench) firstPerServer(ctx context.Context, prof netem.Profile, z zegoServer, measured []variant, bootstraps [variants]string) (serverResults, error) {
	res := serverResults{server: z}
	b.logf("latency profile, %s: first invocations, %d of each, alternating, each in a fresh emulator (plus one discarded round)", z, b.opt.cold)
	s, err := devstack.Start(ctx, devstack.Config{
		Root:      b.root,
		Bootstrap: b.oursBin,
		ZIMServer: b.zimBin,
		LogDir:    filepath.Join(b.dir, "logs", "latency-"+z.slug()),
		Function:  devstack.FunctionConfig{Name: "warm"},
		TLS:       z.tls(),
		HTTP1Only: z == serverHTTP1TLS,
		Latency:   &prof,
	})
	if err != nil {
		return res, err
	}
	defer s.Close()
	admin, app := s.Admin(), s.AppID()
	n := b.opt.cold
	convs, err := seedConvs(ctx, admin, app, coldUser, "srv-"+z.slug(), (n+1)*int(variants))
	if err != nil {
		return res, err
	}
	for i := range n + 1 {
		for _, v := range measured {
			if v == helloWorld {
				continue
			}
			event := directEvent(coldUser, convs[i*int(variants)+int(v)])
			before := s.ZEGOConnections()
			r, err := coldInvoke(ctx, s, bootstraps[v], fmt.Sprintf("srv-%s-%s-%02d", z.slug(), v.slug(), i), nil, event)
			if err != nil {
				return res, err
			}
			call, err := deleted(r)
			if err != nil {
				return res, fmt.Errorf("latency profile, %s, first invocation %d of %s: %w", z, i, v.slug(), err)
			}
			if i == 0 {
				continue
			}
			res.first[v] = append(res.first[v], msOf(r.Latency))
			res.firstCall[v] = append(res.firstCall[v], call)
			res.conns[v] = append(res.conns[v], s.ZEGOConnections()-before)
		}
	}
	return res, s.Close()
}

// serverRows: per kind of ZEGO server, the first invocation before and after,
// against its budget.
func serverRows(l *latencyResults) [][]string {
	hello := median(l.first[helloWorld])
	var rows [][]string
	for _, sr := range l.servers {
		budget, arithmetic := firstBudget(l.profile, hello, sr.server.tls())
		cell := func(v variant) string {
			if len(sr.first[v]) == 0 {
				return ""
			}
			return fmt.Sprintf("%s (first call %s; connections %s)", ms(median(sr.first[v])), ms(median(sr.firstCall[v])), intList(sr.conns[v]))
		}
		ok := len(sr.first[after]) > 0 && median(sr.first[after]) <= budget
		rows = append(rows, []string{sr.server.String(), cell(before), cell(after), arithmetic, met(ok)})
	}
	return rows
}

func intList(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
