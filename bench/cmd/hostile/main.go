// Command hostile is a mux client with a valid certificate that floods the
// gateway on purpose, for the benchmark suite's "Authenticated-client
// floods": refused streams pushed full of data, unread pings, frames for
// streams that do not exist, refusals for log volume, data beyond the
// granted window (see package bench/internal/hostile). Every run is bounded
// in count and time and stops by itself.
//
//	hostile -gateway 127.0.0.1:8443 -cert c.crt -key c.key -ca ca.crt -source 127.0.0.2 -mode pings -duration 10s
//
// It prints "flooding" on stdout when the first session's flood begins,
// and the report as one JSON line when it ends.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/portcullis-gw/portcullis/bench/internal/hostile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "hostile: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o hostile.Options
	var cert, key, ca, serverName string
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Addr, "gateway", "", "the gateway, HOST:PORT (required)")
	fs.StringVar(&cert, "cert", "", "client certificate, PEM (required)")
	fs.StringVar(&key, "key", "", "client key, PEM (required)")
	fs.StringVar(&ca, "ca", "", "CA of the gateway's certificate, PEM (required)")
	fs.StringVar(&serverName, "server-name", "localhost", "name the gateway's certificate must carry")
	fs.StringVar(&o.Source, "source", "", "local IP to connect from, e.g. 127.0.0.2")
	fs.StringVar(&o.Mode, "mode", "", "the flood: "+strings.Join(hostile.Modes, ", ")+" (required)")
	fs.DurationVar(&o.Duration, "duration", 0, "length of the whole run (default 10s)")
	fs.IntVar(&o.MaxSessions, "max-sessions", 0, "sessions at most; one the gateway closes is replaced while time is left (default by mode)")
	fs.IntVar(&o.Count, "count", 0, "per session: pings (pings; default 500000), frames (unknown; 20000), streams (refused 256, logs 40000, window 16)")
	fs.IntVar(&o.StreamBytes, "stream-bytes", 0, "data per stream (refused: within the granted window, default 4 MiB; window: at once, default 1 MiB)")
	fs.StringVar(&o.Route, "route", "", "route the streams ask for (default nosuch, which no gateway of the suite has)")
	fs.IntVar(&o.Hold, "hold", 0, "refused: streams opened first to -hold-route and kept open, to fill the session's stream cap")
	fs.StringVar(&o.HoldRoute, "hold-route", "", "route of the -hold streams (default echo)")
	fs.IntVar(&o.InFlight, "in-flight", 0, "logs: streams waiting for the gateway's answer at once (default 64)")
	fs.Int64Var(&o.MaxBytes, "max-bytes", 0, "stream data over the whole run, at most (default 8 GiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: hostile takes flags only", fs.Arg(0))
	}
	if cert == "" || key == "" || ca == "" {
		return errors.New("-cert, -key and -ca are required")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("-cert %s, -key %s: %w", cert, key, err)
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return fmt.Errorf("-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("-ca %s: no PEM certificate in it", ca)
	}
	o.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13}
	rep, err := hostile.Run(ctx, o, func() { fmt.Fprintln(stdout, "flooding") })
	if rep != nil {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	}
	return err
}
