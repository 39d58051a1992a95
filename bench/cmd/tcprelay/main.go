// Command tcprelay is a baseline for the benchmark suite: a minimal TCP
// relay with the Go standard library (io.Copy both ways, so splice(2) on
// Linux), the floor of what any Go L4 proxy can do.
//
//	tcprelay -listen 127.0.0.1:0 -to 127.0.0.1:7000
//
// It prints "listening ADDR" on stdout once it accepts, and runs until
// SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/bench/internal/relay"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept on")
	to := flag.String("to", "", "backend HOST:PORT (required)")
	flag.Parse()
	if *to == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "tcprelay: -to HOST:PORT is required and no arguments are taken")
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcprelay: -listen %s: %v\n", *listen, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; ln.Close() }()
	backend := *to
	_ = relay.Serve(ln, func(c net.Conn) {
		b, err := net.DialTimeout("tcp", backend, 5*time.Second)
		if err != nil {
			return
		}
		relay.Pipe(c, b)
	})
}
