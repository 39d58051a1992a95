package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/pki"
)

// Bounds of every wait in this package.
const (
	startTimeout = 20 * time.Second // a program prints that it listens
	runTimeout   = 30 * time.Second // a one-shot tunnel command ends
	stopTimeout  = 10 * time.Second // a program ends after a signal
	eventTimeout = 10 * time.Second // a log event shows up
)

// Exit statuses of the command-line contract.
const (
	exitOK          = 0
	exitSettings    = 1
	exitUnreachable = 2
	exitRefused     = 3
)

// ---------------------------------------------------------------------------
// Process output

// lineLog collects what a process writes, line by line, and wakes up those
// waiting for a new line. It is safe for concurrent use.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced when a line is added
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = append([]byte(nil), l.partial[i+1:]...)
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// flush turns an unterminated last line into a line.
func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.lines = append(l.lines, string(l.partial))
		l.partial = nil
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// snapshot returns the lines so far and a channel closed at the next one.
func (l *lineLog) snapshot() ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines[:len(l.lines):len(l.lines)], l.changed
}

// String returns everything written so far.
func (l *lineLog) String() string {
	lines, _ := l.snapshot()
	return strings.Join(lines, "\n")
}

// tail returns the last n lines, for failure messages.
func (l *lineLog) tail(n int) string {
	lines, _ := l.snapshot()
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// event is one JSON log line of a program.
type event map[string]any

// str returns field k as a string ("" if absent or not a string).
func (e event) str(k string) string {
	s, _ := e[k].(string)
	return s
}

func (e event) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

// parseEvent decodes a JSON log line; ok is false for other lines.
func parseEvent(line string) (event, bool) {
	if !strings.HasPrefix(line, "{") {
		return nil, false
	}
	var e event
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		return nil, false
	}
	return e, true
}

// events returns the JSON log lines from line index from on.
func (l *lineLog) events(from int) []event {
	lines, _ := l.snapshot()
	var out []event
	for _, line := range lines[min(from, len(lines)):] {
		if e, ok := parseEvent(line); ok {
			out = append(out, e)
		}
	}
	return out
}

// mark returns the number of lines so far, to wait for events after it.
func (l *lineLog) mark() int {
	lines, _ := l.snapshot()
	return len(lines)
}

// isEvent matches events whose "event" field is name and whose other
// fields contain the given key/value pairs (values compared as text).
func isEvent(name string, kv ...string) func(event) bool {
	return func(e event) bool {
		if e.str("event") != name {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(e[kv[i]]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// ---------------------------------------------------------------------------
// Processes

// proc is a program started by a test. It is stopped in t.Cleanup: SIGTERM,
// then SIGKILL if it is still running after stopTimeout.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *lineLog
	done   chan struct{} // closed when the process has exited and its output is read
}

// startProc starts bin with args and the extra environment variables env
// (KEY=VALUE). stdin and stdout may be nil.
func startProc(t *testing.T, name string, env []string, stdin io.Reader, stdout io.Writer, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	cmd.Env = append(cleanEnv(), env...)
	return startCmd(t, name, cmd)
}

// startCmd starts a prepared command (its Stderr is set here) and stops it
// in t.Cleanup.
func startCmd(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, stderr: newLineLog(), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = stopTimeout // bounds the copy of the output after exit
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		p.stderr.flush()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race (built with E2E_RACE=1)", name)
		}
		if t.Failed() {
			t.Logf("%s %s\nstderr:\n%s", name, strings.Join(cmd.Args[1:], " "), p.stderr.tail(40))
		}
	})
	return p
}

// cleanEnv is the environment of the programs: this process's, without
// the variables the programs read, so the developer's settings cannot leak
// into a test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GATEWAY_") || strings.HasPrefix(kv, "TUNNEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stop ends the process if it still runs and waits for it, bounded.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	t.Errorf("%s did not exit within %v of SIGTERM; killing it", p.name, stopTimeout)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Errorf("%s: still not reaped %v after SIGKILL", p.name, stopTimeout)
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit on its own and returns its status.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v; stderr:\n%s", p.name, timeout, p.stderr.tail(40))
		return -1
	}
}

// waitEvent waits for a JSON log event on stderr, at or after line index
// from, that match accepts. It fails the test if the process exits or the
// timeout passes first.
func (p *proc) waitEvent(t *testing.T, from int, timeout time.Duration, match func(event) bool) event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		lines, changed := p.stderr.snapshot()
		for _, line := range lines[min(from, len(lines)):] {
			if e, ok := parseEvent(line); ok && match(e) {
				return e
			}
		}
		from = len(lines)
		select {
		case <-changed:
		case <-p.done:
			// The output is complete now: one last look.
			for _, line := range p.stderr.events(from) {
				if match(line) {
					return line
				}
			}
			t.Fatalf("%s exited (status %d) before the expected log event; stderr:\n%s",
				p.name, p.cmd.ProcessState.ExitCode(), p.stderr.tail(40))
			return nil
		case <-deadline.C:
			t.Fatalf("%s: expected log event not seen within %v; stderr:\n%s", p.name, timeout, p.stderr.tail(40))
			return nil
		}
	}
}

// waitLine waits for a line of stderr, at or after line index from, that
// contains substr. It fails the test if the process exits or the timeout
// passes first.
func (p *proc) waitLine(t *testing.T, from int, timeout time.Duration, substr string) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		lines, changed := p.stderr.snapshot()
		for _, line := range lines[min(from, len(lines)):] {
			if strings.Contains(line, substr) {
				return line
			}
		}
		from = len(lines)
		select {
		case <-changed:
		case <-p.done:
			lines, _ := p.stderr.snapshot()
			for _, line := range lines[min(from, len(lines)):] {
				if strings.Contains(line, substr) {
					return line
				}
			}
			t.Fatalf("%s exited (status %d) before printing %q; stderr:\n%s",
				p.name, p.cmd.ProcessState.ExitCode(), substr, p.stderr.tail(40))
			return ""
		case <-deadline.C:
			t.Fatalf("%s: %q not printed within %v; stderr:\n%s", p.name, substr, timeout, p.stderr.tail(40))
			return ""
		}
	}
}

// result is what a one-shot program run produced.
type result struct {
	stdout []byte
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("exit status %d, %d bytes on stdout, stderr:\n%s", r.code, len(r.stdout), r.stderr)
}

// run runs bin with args to completion, bounded by timeout, with stdin
// (nil: empty) and the extra environment variables env (KEY=VALUE).
func run(t *testing.T, timeout time.Duration, stdin io.Reader, env []string, bin string, args ...string) result {
	t.Helper()
	return runIn(t, "", timeout, stdin, env, bin, args...)
}

// runIn is run in the working directory dir ("" for the current one).
func runIn(t *testing.T, dir string, timeout time.Duration, stdin io.Reader, env []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = stopTimeout
	err := cmd.Run()
	res := result{stdout: stdout.Bytes(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v; killed; stderr:\n%s", filepath.Base(bin), strings.Join(args, " "), timeout, res.stderr)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", bin, err)
	}
	res.code = cmd.ProcessState.ExitCode()
	return res
}

// tunnel runs "tunnel ARGS..." to completion.
func tunnel(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	return run(t, runTimeout, stdin, nil, tunnelBin, args...)
}

// wantExit checks the exit status and that stderr holds every one of the
// words (case-insensitive).
func wantExit(t *testing.T, what string, r result, code int, words ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit status %d, want %d; stderr:\n%s", what, r.code, code, r.stderr)
		return
	}
	low := strings.ToLower(r.stderr)
	for _, w := range words {
		if !strings.Contains(low, strings.ToLower(w)) {
			t.Errorf("%s: stderr does not say %q:\n%s", what, w, r.stderr)
		}
	}
}

// ---------------------------------------------------------------------------
// The gateway

// gatewayProc is a running gateway and the address it listens on.
type gatewayProc struct {
	*proc
	addr string
}

// startGateway runs "gateway run ARGS..." and waits until it listens.
func startGateway(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	return startGatewayEnv(t, nil, args...)
}

// startGatewayEnv is startGateway with extra environment variables.
func startGatewayEnv(t *testing.T, env []string, args ...string) *gatewayProc {
	t.Helper()
	gp := startProc(t, "gateway", env, nil, nil, gatewayBin, append([]string{"run"}, args...)...)
	ev := gp.waitEvent(t, 0, startTimeout, isEvent("listening"))
	addr := ev.str("addr")
	if _, err := net.ResolveTCPAddr("tcp", addr); err != nil || addr == "" {
		t.Fatalf("gateway listening event has no usable addr: %v", ev)
	}
	return &gatewayProc{proc: gp, addr: addr}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// ---------------------------------------------------------------------------
// PKI

// pair is a certificate file and its key file.
type pair struct{ cert, key string }

// testCA is a CA directory made with "gateway pki", shared by the tests
// (nothing changes it after it is made).
type testCA struct {
	dir    string
	caFile string // trust anchor (--ca)
	crl    string // crl.pem written by init
	server pair   // "gw": localhost, gw.test, 127.0.0.1; EKU serverAuth
	alice  pair   // uri spiffe://e2e/alice: allowed by allowAlice
	bob    pair   // uri spiffe://outsider/bob: a good certificate that allowAlice refuses
}

// allowAlice is the identity rule the gateways of these tests use.
const allowAlice = "uri:spiffe://e2e/*"

var sharedCA = sync.OnceValues(func() (*testCA, error) {
	dir := filepath.Join(workDir, "pki")
	steps := [][]string{
		{"pki", "init", "--dir", dir, "--name", "e2e CA"},
		{"pki", "issue", "--dir", dir, "--server", "--name", "gw", "--dns", "localhost", "--dns", "gw.test", "--ip", "127.0.0.1"},
		{"pki", "issue", "--dir", dir, "--client", "--name", "alice", "--uri", "spiffe://e2e/alice"},
		{"pki", "issue", "--dir", dir, "--client", "--name", "bob", "--uri", "spiffe://outsider/bob"},
	}
	for _, args := range steps {
		cmd := exec.Command(gatewayBin, args...)
		cmd.Env = cleanEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("gateway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	p := func(name string) pair {
		return pair{cert: filepath.Join(dir, name+".crt"), key: filepath.Join(dir, name+".key")}
	}
	return &testCA{
		dir: dir, caFile: filepath.Join(dir, "ca.crt"), crl: filepath.Join(dir, "crl.pem"),
		server: p("gw"), alice: p("alice"), bob: p("bob"),
	}, nil
})

// getCA returns the shared CA, made on first use.
func getCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := sharedCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// special issues a certificate that "gateway pki issue" does not make
// (explicit dates, for instance) from the shared CA, into a directory of t.
func (c *testCA) special(t *testing.T, name string, req pki.Request) pair {
	t.Helper()
	d, err := pki.Open(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	p := testpki.WritePair(t, t.TempDir(), name, d.CA(), req)
	return pair{cert: p.Cert, key: p.Key}
}

// gatewayArgs returns the arguments of a gateway on 127.0.0.1, a free port,
// with the shared server certificate and CA, followed by extra.
func (c *testCA) gatewayArgs(extra ...string) []string {
	return append([]string{
		"--listen", "127.0.0.1:0",
		"--cert", c.server.cert, "--key", c.server.key, "--ca", c.caFile,
		"--handshake-timeout", "5s", "--dial-timeout", "3s", "--drain-timeout", "5s",
	}, extra...)
}

// clientArgs returns the tunnel arguments that reach the gateway at addr
// with the certificate id.
func (c *testCA) clientArgs(addr string, id pair) []string {
	return []string{"--gateway", addr, "--cert", id.cert, "--key", id.key, "--ca", c.caFile}
}

// ---------------------------------------------------------------------------
// Backends owned by the tests

// echoBackend is a TCP server on 127.0.0.1 that echoes each connection;
// when the client half-closes, it writes trailer (if any) and closes.
type echoBackend struct {
	addr    string
	ln      net.Listener
	trailer []byte
	eofs    atomic.Int64 // connections whose client half-closed
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startEchoBackend(t *testing.T, trailer []byte) *echoBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &echoBackend{addr: ln.Addr().String(), ln: ln, trailer: trailer, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *echoBackend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return // closed by close
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			if _, err := io.Copy(c, c); err != nil {
				return
			}
			b.eofs.Add(1)
			if len(b.trailer) > 0 {
				_, _ = c.Write(b.trailer)
			}
		}()
	}
}

func (b *echoBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// closedAddr returns a loopback address where nothing listens (a port that
// was free a moment ago).
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ---------------------------------------------------------------------------
// Data

// randomStream returns n pseudo-random bytes, the same for the same seed.
func randomStream(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// randomBytes returns randomStream(seed, n) in memory.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(randomStream(seed, int64(n)), b); err != nil {
		panic(err)
	}
	return b
}

// compareStream reads r to EOF and checks that it holds exactly
// randomStream(seed, n); the error names the first difference.
func compareStream(r io.Reader, seed uint64, n int64) error {
	want := bufio.NewReaderSize(randomStream(seed, n), 64<<10)
	got := make([]byte, 32<<10)
	exp := make([]byte, 32<<10)
	var off int64
	for {
		k, err := r.Read(got)
		if k > 0 {
			if off+int64(k) > n {
				return fmt.Errorf("received more than the %d bytes sent", n)
			}
			if _, err := io.ReadFull(want, exp[:k]); err != nil {
				return err
			}
			if !bytes.Equal(got[:k], exp[:k]) {
				for i := range k {
					if got[i] != exp[i] {
						return fmt.Errorf("byte %d differs: got %#x, want %#x", off+int64(i), got[i], exp[i])
					}
				}
			}
			off += int64(k)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", off, n, err)
		}
	}
	if off != n {
		return fmt.Errorf("received %d bytes, want %d", off, n)
	}
	return nil
}
