package netem_test

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

func ExampleListen() {
	// An echo server stands for the local service.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()

	// Clients connect to p.Addr() instead; every connection pays Setup once
	// and RoundTrip per exchange.
	p, err := netem.Listen(l.Addr().String(), netem.Link{Setup: 20 * time.Millisecond, RoundTrip: 40 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	start := time.Now() // before Dial: Setup runs from the connection's accept
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprint(c, "ping")
	reply := make([]byte, 4)
	if _, err := io.ReadFull(c, reply); err != nil {
		panic(err)
	}
	fmt.Printf("%s after at least 60ms: %t; connections: %d\n", reply, time.Since(start) >= 60*time.Millisecond, p.Accepted())
	// Output: ping after at least 60ms: true; connections: 1
}
