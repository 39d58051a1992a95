// Command tlsterm is a baseline for the benchmark suite: a bare mutual-TLS
// terminator with crypto/tls and nothing else. TLS 1.3 only, a client
// certificate required and verified against -ca, one backend per SNI name
// (the first -route is the default), bytes relayed with io.Copy. It is the
// floor of what Go's TLS can do, against which the gateway is measured.
//
//	tlsterm -listen 127.0.0.1:0 -cert gw.crt -key gw.key -ca ca.crt -route echo=127.0.0.1:7000
//
// It prints "listening ADDR" on stdout once it accepts, and runs until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-gw/portcullis/bench/internal/relay"
)

type routes []string

func (r *routes) String() string     { return strings.Join(*r, ",") }
func (r *routes) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "tlsterm: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept on")
	certFile := flag.String("cert", "", "server certificate chain, PEM (required)")
	keyFile := flag.String("key", "", "its private key, PEM (required)")
	caFile := flag.String("ca", "", "CA bundle client certificates must chain to, PEM (required)")
	var rs routes
	flag.Var(&rs, "route", "NAME=HOST:PORT, the backend for SNI NAME (repeatable; the first is the default)")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || *caFile == "" || len(rs) == 0 {
		return fmt.Errorf("-cert, -key, -ca and at least one -route NAME=HOST:PORT are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("-cert %s -key %s: %w", *certFile, *keyFile, err)
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("-ca %s: no PEM certificate", *caFile)
	}
	backends := map[string]string{}
	var def string
	for _, r := range rs {
		name, addr, ok := strings.Cut(r, "=")
		if !ok || name == "" || addr == "" {
			return fmt.Errorf("-route %q: want NAME=HOST:PORT", r)
		}
		backends[name] = addr
		if def == "" {
			def = addr
		}
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("-listen %s: %w", *listen, err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; ln.Close() }()
	return relay.Serve(ln, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return
		}
		addr, ok := backends[tc.ConnectionState().ServerName]
		if !ok {
			addr = def
		}
		b, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		relay.Pipe(tc, b)
	})
}
