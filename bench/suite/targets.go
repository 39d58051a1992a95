package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// target is a server under test: the gateway or a baseline.
type target struct {
	name  string
	proc  *child
	addrs map[string]string // route -> address to connect to
	args  []string          // tunnel bench flags that reach it (--direct, --unsafe-plaintext)
}

// addr returns the address for route.
func (t *target) addr(route string) string {
	if a, ok := t.addrs[route]; ok {
		return a
	}
	return t.addrs["echo"]
}

// files are the PKI files of the run.
type files struct {
	ca, serverCert, serverKey, serverPEM, clientCert, clientKey string
}

// makePKI creates a CA, a server certificate for localhost/127.0.0.1 and a
// client certificate with `gateway pki`, all ECDSA P-256.
func makePKI(gatewayBin, dir string) (files, error) {
	d := filepath.Join(dir, "pki")
	steps := [][]string{
		{"pki", "init", "--dir", d, "--name", "bench CA"},
		{"pki", "issue", "--dir", d, "--server", "--name", "gw", "--dns", "localhost", "--ip", "127.0.0.1"},
		{"pki", "issue", "--dir", d, "--client", "--name", "bench", "--uri", "spiffe://bench/client", "--ttl", "1d"},
	}
	for _, s := range steps {
		if out, err := exec.Command(gatewayBin, s...).CombinedOutput(); err != nil {
			return files{}, fmt.Errorf("gateway %s: %w\n%s", strings.Join(s, " "), err, out)
		}
	}
	f := files{
		ca: filepath.Join(d, "ca.crt"), serverCert: filepath.Join(d, "gw.crt"), serverKey: filepath.Join(d, "gw.key"),
		clientCert: filepath.Join(d, "bench.crt"), clientKey: filepath.Join(d, "bench.key"),
		serverPEM: filepath.Join(d, "gw.pem"),
	}
	// haproxy wants the certificate and its key in one file.
	crt, err := os.ReadFile(f.serverCert)
	if err != nil {
		return files{}, err
	}
	key, err := os.ReadFile(f.serverKey)
	if err != nil {
		return files{}, err
	}
	if err := os.WriteFile(f.serverPEM, append(crt, key...), 0o600); err != nil {
		return files{}, err
	}
	return f, nil
}

// gatewayArgs are the flags of the gateway under test: every backend as a
// TCP route, the built-ins too, 127.0.0.1 allowed (so 127.0.0.2 is denied),
// limits high enough for 10,000 streams on one session.
func gatewayArgs(addr string, f files, b *backends, logLevel string) []string {
	return []string{
		"run", "--listen", addr, "--cert", f.serverCert, "--key", f.serverKey, "--ca", f.ca,
		"--allow", "127.0.0.1", "--allow-id", "any",
		"--route", "echo=" + b.echo, "--route", "discard=" + b.discard, "--route", "source=" + b.source,
		"--route", "becho=builtin:echo", "--route", "bdiscard=builtin:discard",
		"--log-level", logLevel, "--log-format", "json",
		"--max-conns", "20000", "--max-handshakes", "256", "--max-streams", "20000",
	}
}

func startGateway(bin, dir string, f files, b *backends, logLevel, name string) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	c, err := start(dir, name, bin, gatewayArgs(addr, f, b, logLevel), nil)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(c, addr); err != nil {
		return nil, err
	}
	return &target{name: name, proc: c, addrs: map[string]string{"echo": addr, "discard": addr, "source": addr}}, nil
}

func startTLSTerm(bin, dir string, f files, b *backends) (*target, error) {
	c, addr, err := startListening(dir, "tlsterm", bin, []string{
		"-listen", "127.0.0.1:0", "-cert", f.serverCert, "-key", f.serverKey, "-ca", f.ca,
		"-route", "echo=" + b.echo, "-route", "discard=" + b.discard, "-route", "source=" + b.source,
	})
	if err != nil {
		return nil, err
	}
	return &target{name: "tlsterm", proc: c, addrs: map[string]string{"echo": addr, "discard": addr, "source": addr},
		args: []string{"--direct"}}, nil
}

func startTCPRelay(bin, dir string, b *backends) (*target, error) {
	c, addr, err := startListening(dir, "tcprelay", bin, []string{"-listen", "127.0.0.1:0", "-to", b.echo})
	if err != nil {
		return nil, err
	}
	return &target{name: "tcprelay", proc: c, addrs: map[string]string{"echo": addr}, args: []string{"--unsafe-plaintext"}}, nil
}

// routePorts picks a loopback port for each backend route of a baseline
// that has one listener per route.
func routePorts(b *backends) (map[string]string, map[string]string, error) {
	front := map[string]string{}
	back := map[string]string{"echo": b.echo, "discard": b.discard, "source": b.source}
	for r := range back {
		a, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		front[r] = a
	}
	return front, back, nil
}

// haproxyConfig is a minimal TCP-mode TLS terminator: TLS 1.3, client
// certificate required and verified, one frontend per route.
func haproxyConfig(f files, front, back map[string]string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `global
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.3

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
`)
	for _, r := range sortedKeys(front) {
		fmt.Fprintf(&sb, `
frontend fe_%[1]s
    bind %[2]s ssl crt %[3]s verify required ca-file %[4]s
    default_backend be_%[1]s

backend be_%[1]s
    server s1 %[5]s
`, r, front[r], f.serverPEM, f.ca, back[r])
	}
	return sb.String()
}

func startHAProxy(bin, dir string, f files, b *backends) (*target, error) {
	front, back, err := routePorts(b)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(f, front, back)), 0o600); err != nil {
		return nil, err
	}
	c, err := start(dir, "haproxy", bin, []string{"-f", cfg, "-db"}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(c, front["echo"], front["discard"], front["source"]); err != nil {
		return nil, err
	}
	return &target{name: "haproxy", proc: c, addrs: front, args: []string{"--direct"}}, nil
}

// stunnelConfig is the same for stunnel: one service per route.
func stunnelConfig(f files, front, back map[string]string, logPath string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "foreground = yes\npid =\nsyslog = no\ndebug = 3\noutput = %s\n", logPath)
	for _, r := range sortedKeys(front) {
		fmt.Fprintf(&sb, `
[%s]
accept = %s
connect = %s
cert = %s
key = %s
CAfile = %s
requireCert = yes
verifyChain = yes
sslVersionMin = TLSv1.3
`, r, front[r], back[r], f.serverCert, f.serverKey, f.ca)
	}
	return sb.String()
}

func startStunnel(bin, dir string, f files, b *backends) (*target, error) {
	front, back, err := routePorts(b)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "stunnel.conf")
	conf := stunnelConfig(f, front, back, filepath.Join(dir, "stunnel-service.log"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	c, err := start(dir, "stunnel", bin, []string{cfg}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(c, front["echo"], front["discard"], front["source"]); err != nil {
		return nil, err
	}
	return &target{name: "stunnel", proc: c, addrs: front, args: []string{"--direct"}}, nil
}

// lookPath returns the first of the names found in PATH (and the sbin
// directories, where Debian puts haproxy), or "".
func lookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}
