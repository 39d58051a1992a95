package e2e_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dyingBackend echoes lines and, after the fifth, fails: it resets the
// connection (as a crashed server's kernel does when data is unread).
func dyingBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for range 5 {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
				_ = c.(*net.TCPConn).SetLinger(0)
			}()
		}
	}()
	return ln.Addr().String()
}

// A backend that fails in the middle of a stream reaches the client as a
// reset, with the reason: `tunnel nc` exits 2 (cut off) after the lines
// that got through, and a connection forwarded by `tunnel forward` is
// reset, not ended cleanly.
func TestBackendFailureMidStream(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "db="+dyingBackend(t))...)

	var in strings.Builder
	for i := range 20 {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	r := tunnel(t, slowReader(t, in.String(), 20*time.Millisecond), append([]string{"nc", "db"}, ca.clientArgs(gw.addr, ca.alice)...)...)
	wantExit(t, "tunnel nc through a backend that fails", r, exitUnreachable, "reset", "route \"db\"", "backend failed")
	if n := strings.Count(string(r.stdout), "\n"); n < 1 || n > 5 {
		t.Errorf("nc printed %d lines before the failure, want 1 to 5:\n%s", n, r.stdout)
	}

	locals := startForward(t, ca.clientArgs(gw.addr, ca.alice), "127.0.0.1:0=db")
	c, err := net.Dial("tcp", locals["db"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var readErr error
	for i := range 20 {
		if _, err := fmt.Fprintf(c, "line %d\n", i); err != nil {
			readErr = err
			break
		}
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			readErr = err
			break
		}
	}
	if !errors.Is(readErr, syscall.ECONNRESET) && !errors.Is(readErr, syscall.EPIPE) {
		t.Errorf("the forwarded connection ended with %v; want a reset (ECONNRESET)", readErr)
	}
}

// slowReader hands out s a line at a time, pausing between lines, as a
// person or a program writing to nc would.
func slowReader(t *testing.T, s string, pause time.Duration) io.Reader {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pr.Close() })
	go func() {
		for _, line := range strings.SplitAfter(s, "\n") {
			if _, err := io.WriteString(pw, line); err != nil {
				return
			}
			time.Sleep(pause)
		}
		pw.Close()
	}()
	return pr
}
