package e2e_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Load balancers and PROXY protocol consumers the tests run: HAProxy and
// nginx (its stream module), from the Debian packages haproxy, nginx and
// libnginx-mod-stream.

// freePort returns a port of ip where nothing listens (one that was free a
// moment ago), as "ip:port".
func freePort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lbProc is a running load balancer: its stdout, where its access log goes
// one line per connection, and its stderr.
type lbProc struct {
	*proc
	stdout *lineLog
}

// waitStdout waits for a line of stdout, at or after line index from, that
// contains every one of words; it fails the test when the timeout passes
// or the process exits first.
func (p *lbProc) waitStdout(t *testing.T, from int, timeout time.Duration, words ...string) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		lines, changed := p.stdout.snapshot()
		for _, line := range lines[min(from, len(lines)):] {
			if containsAll(line, words) {
				return line
			}
		}
		from = len(lines)
		select {
		case <-changed:
		case <-p.done:
			t.Fatalf("%s exited before logging %q; stdout:\n%s\nstderr:\n%s", p.name, words, p.stdout.tail(20), p.stderr.tail(20))
			return ""
		case <-deadline.C:
			t.Fatalf("%s: no line with %q within %v; stdout:\n%s", p.name, words, timeout, p.stdout.tail(20))
			return ""
		}
	}
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// waitListening waits until addr accepts TCP connections (a connection it
// opens and closes at once, so addr must be a port where that is harmless).
func waitListening(t *testing.T, p *proc, addr string) {
	t.Helper()
	ok := waitUntil(startTimeout, func() bool {
		if p.exited() {
			return true
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if !ok || p.exited() {
		t.Fatalf("%s does not listen on %s after %v; stderr:\n%s", p.name, addr, startTimeout, p.stderr.tail(20))
	}
}

// startHAProxy checks and runs HAProxy in the foreground with the
// configuration cfg, whose "global" section must log to stdout, and which
// must bind ready (a port the test may connect to and leave at once, such
// as a monitor-uri frontend): HAProxy is ready when ready accepts.
func startHAProxy(t *testing.T, cfg, ready string) *lbProc {
	t.Helper()
	haproxy := lookTool(t, "haproxy")
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(t, runTimeout, nil, nil, haproxy, "-c", "-f", file); r.code != 0 {
		t.Fatalf("haproxy -c rejects the configuration:\n%s\n%s%s", cfg, r.stdout, r.stderr)
	}
	out := newLineLog()
	p := &lbProc{proc: startProc(t, "haproxy", nil, nil, out, haproxy, "-f", file, "-db"), stdout: out}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy stdout:\n%s", out.tail(40))
		}
	})
	waitListening(t, p.proc, ready)
	return p
}

// nginxStreamModule is where Debian's libnginx-mod-stream puts the module.
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// startNginx checks and runs nginx in the foreground with the stream
// configuration stream (the body of a stream {} block; its access log
// should go to /dev/stdout), and waits until addr accepts.
func startNginx(t *testing.T, stream, addr string) *lbProc {
	t.Helper()
	nginx := lookTool(t, "nginx")
	if _, err := os.Stat(nginxStreamModule); err != nil {
		t.Skipf("nginx's stream module (%s) is missing: install libnginx-mod-stream to run this test", nginxStreamModule)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
pid %s;
error_log stderr notice;
events { worker_connections 64; }
stream {
%s
}
`, nginxStreamModule, filepath.Join(dir, "nginx.pid"), stream)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir, "-e", "stderr", "-c", file}
	if r := run(t, runTimeout, nil, nil, nginx, append(args, "-t")...); r.code != 0 {
		t.Fatalf("nginx -t rejects the configuration:\n%s\n%s%s", cfg, r.stdout, r.stderr)
	}
	out := newLineLog()
	p := &lbProc{proc: startProc(t, "nginx", nil, nil, out, nginx, args...), stdout: out}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx stdout:\n%s", out.tail(40))
		}
	})
	waitListening(t, p.proc, addr)
	return p
}

// directClient speaks TLS in direct mode (the SNI is the route) from the
// source address from (the port chosen by the kernel), as a plain TLS
// client that knows nothing of portcullis would. It checks that the
// gateway's certificate holds gw.test, as the shared server certificate
// does.
type directClient struct {
	ca   *testCA
	id   pair
	from string // source IP
}

// echo connects to addr with SNI route, sends line and reads as many bytes
// back. It returns the local address it connected from, what came back,
// and the first error.
func (d directClient) echo(t *testing.T, addr, route, line string) (string, string, error) {
	t.Helper()
	pem, err := os.ReadFile(d.ca.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", d.ca.caFile)
	}
	cert, err := tls.LoadX509KeyPair(d.id.cert, d.id.key)
	if err != nil {
		t.Fatal(err)
	}
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(d.from)}, Timeout: 3 * time.Second}
	raw, err := dialer.Dial("tcp", addr)
	if err != nil {
		return "", "", err
	}
	defer raw.Close()
	local := raw.LocalAddr().String()
	c := tls.Client(raw, &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert},
		ServerName: route, // the SNI names the route ...
		// ... and the certificate is checked for the gateway's name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{DNSName: "gw.test", Roots: pool, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	})
	_ = c.SetDeadline(time.Now().Add(runTimeout))
	if _, err := io.WriteString(c, line); err != nil {
		return local, "", err
	}
	buf := make([]byte, len(line))
	n, err := io.ReadFull(c, buf)
	return local, string(buf[:n]), err
}
