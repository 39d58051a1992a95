package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/conn"
)

// runBench runs "tunnel bench": it parses the settings, loads the client
// credentials when the mode needs them, runs the load and prints the
// result on stdout (a table, or one JSON object with --json). A progress
// line goes to stderr when stderr is a terminal. SIGINT or SIGTERM ends the
// run early; the result covers what was done. The error is nil when at
// least one operation succeeded.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := bench.ParseSettings(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	var creds *conn.ClientCreds
	if s.NeedsTLS() {
		creds, err = conn.NewClientCreds(conn.ClientFiles{Cert: s.Cert, Key: s.Key, KeyPass: s.KeyPassFile, CA: s.CA})
		if err != nil {
			return err
		}
		for _, w := range creds.State().Warnings {
			fmt.Fprintf(stderr, "tunnel bench: warning: %s\n", w)
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var progress io.Writer
	if isTerminal(stderr) {
		progress = stderr
	}
	res, err := bench.Run(ctx, s, creds, progress)
	if res != nil {
		var werr error
		if s.JSON {
			werr = res.WriteJSON(stdout)
		} else {
			werr = res.WriteText(stdout)
		}
		if err == nil && werr != nil {
			err = fmt.Errorf("writing the result: %w", werr)
		}
	}
	return err
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
