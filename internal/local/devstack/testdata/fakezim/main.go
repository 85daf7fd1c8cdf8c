// Command fakezim is a stand-in for cmd/zimserver in the devstack tests: it
// takes the same flags, prints ZIM_URL=... when ready and serves until SIGTERM.
// With -tls it serves HTTPS (HTTP/2 and HTTP/1.1) and writes its certificate
// to the -tls-cert-out file first, as zimserver does.
package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.String("seed", "", "seed file (ignored)")
	useTLS := flag.Bool("tls", false, "serve HTTPS")
	certOut := flag.String("tls-cert-out", "", "with -tls, where the certificate goes")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Answers with the protocol, so that tests see what a client negotiated.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"Code":0,"Proto":%q}`+"\n", r.Proto)
	}))
	srv.Listener.Close()
	srv.Listener = l
	if *useTLS {
		srv.EnableHTTP2 = true
		srv.StartTLS()
		cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(*certOut, cert, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	} else {
		srv.Start()
	}
	fmt.Printf("ZIM_URL=%s\n", srv.URL)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	srv.Close()
}
