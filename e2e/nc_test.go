package e2e_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
)

// TestNCRoundTrip sends 1 MiB of random bytes through "tunnel nc" to the
// gateway's echo and to a TCP echo server of the test, and checks that
// stdout is the same bytes, that the end of stdin reaches the backend as a
// half-close, and that nc exits 0 once the backend is done.
func TestNCRoundTrip(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	trailer := []byte("\n-- the backend saw the end of the input --\n")
	be := startEchoBackend(t, trailer)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "echo=builtin:echo", "--route", "tcp="+be.addr)...)
	const size = 1 << 20
	data := randomBytes(1, size)

	t.Run("builtin-echo", func(t *testing.T) {
		mark := gw.stderr.mark()
		r := tunnel(t, bytes.NewReader(data), append([]string{"nc", "echo"}, ca.clientArgs(gw.addr, ca.alice)...)...)
		wantExit(t, "tunnel nc echo", r, exitOK)
		if err := sameBytes(r.stdout, data); err != nil {
			t.Errorf("stdout of tunnel nc echo: %v", err)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("stream_close", "route", "echo"))
		checkBytes(t, ev, size, size)
		if !strings.Contains(ev.String(), "spiffe://e2e/alice") {
			t.Errorf("stream_close event does not name the identity spiffe://e2e/alice: %v", ev)
		}
	})

	t.Run("tcp-backend", func(t *testing.T) {
		mark := gw.stderr.mark()
		eofs := be.eofs.Load()
		r := tunnel(t, bytes.NewReader(data), append([]string{"nc", "tcp"}, ca.clientArgs(gw.addr, ca.alice)...)...)
		wantExit(t, "tunnel nc tcp", r, exitOK)
		want := append(append([]byte(nil), data...), trailer...)
		if err := sameBytes(r.stdout, want); err != nil {
			t.Errorf("stdout of tunnel nc tcp (the data, then the backend's trailer): %v", err)
		}
		if got := be.eofs.Load() - eofs; got != 1 {
			t.Errorf("the backend saw the end of the input on %d connections, want 1", got)
		}
		ev := gw.waitEvent(t, mark, eventTimeout, isEvent("stream_close", "route", "tcp"))
		checkBytes(t, ev, size, size+int64(len(trailer)))
	})

	t.Run("empty-input", func(t *testing.T) {
		r := tunnel(t, nil, append([]string{"nc", "tcp"}, ca.clientArgs(gw.addr, ca.alice)...)...)
		wantExit(t, "tunnel nc tcp < /dev/null", r, exitOK)
		if !bytes.Equal(r.stdout, trailer) {
			t.Errorf("stdout = %q, want only the trailer %q", r.stdout, trailer)
		}
	})
}

// TestNCRemoteDoneFirst checks that nc exits 0 when the backend has sent
// everything and closed, while stdin is still open (as with an interactive
// session or an SSH ProxyCommand whose server hung up).
func TestNCRemoteDoneFirst(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	greeting := []byte("220 hello from the backend, bye\r\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		_, err = c.Write(greeting)
		c.Close()
		served <- err
	}()
	t.Cleanup(func() {
		ln.Close()
		<-finished
	})
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "greet="+ln.Addr().String())...)

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close() // held open until nc has exited
	var stdout testnet.SyncBuffer
	nc := startProc(t, "tunnel nc", nil, stdinR, &stdout, tunnelBin, append([]string{"nc", "greet"}, ca.clientArgs(gw.addr, ca.alice)...)...)
	stdinR.Close() // the child has its copy
	if code := nc.wait(t, runTimeout); code != exitOK {
		t.Fatalf("tunnel nc exit status %d, want 0; stderr:\n%s", code, nc.stderr.String())
	}
	if got := stdout.Bytes(); !bytes.Equal(got, greeting) {
		t.Errorf("stdout = %q, want %q", got, greeting)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("backend: %v", err)
		}
	case <-time.After(eventTimeout):
		t.Errorf("the backend was not reached")
	}
}

// sameBytes explains how got differs from want.
func sameBytes(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			return fmt.Errorf("got %d bytes, want %d; first difference at byte %d", len(got), len(want), i)
		}
	}
	return fmt.Errorf("got %d bytes, want %d; the shorter is a prefix of the longer", len(got), len(want))
}

// checkBytes checks the byte counts of a stream_close audit event.
func checkBytes(t *testing.T, ev event, in, out int64) {
	t.Helper()
	gotIn, _ := ev["bytes_in"].(float64)
	gotOut, _ := ev["bytes_out"].(float64)
	if int64(gotIn) != in || int64(gotOut) != out {
		t.Errorf("stream_close event: bytes_in %v bytes_out %v, want %d and %d: %v", ev["bytes_in"], ev["bytes_out"], in, out, ev)
	}
}

// waitUntil polls cond every 20ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
