package e2e_test

import (
	"fmt"
	"strings"
	"testing"
)

// The PROXY v2 header a route sends its backend (--route-proxy), read by
// the programs users put there: HAProxy (accept-proxy) and nginx
// (listen ... proxy_protocol), each forwarding to a TCP echo server of the
// test and logging the client address the header carries.

// proxyOutCase is a client of the gateway and the address the backend's
// consumer must log for it.
type proxyOutCase struct {
	name string
	// echo sends line through the gateway's route and returns what came
	// back and the client's address as the gateway saw it.
	echo func(t *testing.T, route, line string) (got, client string, err error)
}

// proxyOutClients returns the two ways in: "tunnel nc" (mux mode, from
// 127.0.0.1; its address is read from the gateway's stream_open event) and
// a plain TLS client in direct mode from 127.0.0.5.
func proxyOutClients(ca *testCA, gw *gatewayProc) []proxyOutCase {
	return []proxyOutCase{
		{"tunnel-nc", func(t *testing.T, route, line string) (string, string, error) {
			mark := gw.stderr.mark()
			r := tunnel(t, strings.NewReader(line), append([]string{"nc", route}, ca.clientArgs(gw.addr, ca.alice)...)...)
			ev := gw.waitEvent(t, mark, eventTimeout, isEvent("stream_open", "route", route))
			if r.code != exitOK {
				return string(r.stdout), ev.str("peer"), fmt.Errorf("tunnel nc %s: %v", route, r)
			}
			return string(r.stdout), ev.str("peer"), nil
		}},
		{"direct-from-127.0.0.5", func(t *testing.T, route, line string) (string, string, error) {
			local, got, err := directClient{ca: ca, id: ca.alice, from: "127.0.0.5"}.echo(t, gw.addr, route, line)
			if err != nil {
				err = fmt.Errorf("direct client from 127.0.0.5: %w", err)
			}
			return got, local, err
		}},
	}
}

// TestProxyOutHAProxy puts HAProxy (bind ... accept-proxy, mode tcp)
// behind a route with --route-proxy: its log must show each client's own
// address and port, and the route as the authority TLV.
func TestProxyOutHAProxy(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	be := startEchoBackend(t, nil)
	listen, ready := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	hap := startHAProxy(t, fmt.Sprintf(`global
  log stdout format raw local0
defaults
  mode tcp
  log global
  option dontlognull
  timeout connect 3s
  timeout client 30s
  timeout server 30s
frontend ready
  mode http
  bind %s
  monitor-uri /ready
frontend from_gateway
  bind %s accept-proxy
  log-format "client=%%ci:%%cp authority=%%[fc_pp_authority] server=%%b/%%s bytes_in=%%U"
  default_backend echo
backend echo
  server echo %s
`, ready, listen, be.addr), ready)

	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1,127.0.0.5", "--allow-id", allowAlice,
		"--route", "hap="+listen, "--route-proxy", "hap")...)
	for _, c := range proxyOutClients(ca, gw) {
		t.Run(c.name, func(t *testing.T) {
			mark := hap.stdout.mark()
			line := "through haproxy from " + c.name + "\n"
			got, client, err := c.echo(t, "hap", line)
			if err != nil {
				t.Fatal(err)
			}
			if got != line {
				t.Errorf("echo through HAProxy: got %q, want %q", got, line)
			}
			if client == "" {
				t.Fatal("no client address to look for")
			}
			// HAProxy logs a TCP session when it ends.
			l := hap.waitStdout(t, mark, eventTimeout, "client="+client+" ")
			if !strings.Contains(l, "authority=hap ") {
				t.Errorf("HAProxy did not read the route from the authority TLV: %q", l)
			}
			if !strings.Contains(l, fmt.Sprintf("bytes_in=%d", len(line))) {
				t.Errorf("HAProxy log line does not count the %d bytes sent: %q", len(line), l)
			}
		})
	}
}

// TestProxyOutNginx is TestProxyOutHAProxy with nginx's stream module
// (listen ... proxy_protocol; $proxy_protocol_addr in its access log), and
// the route's header in version 1: nginx 1.22 (Debian 12's) reads at most
// 107 bytes of PROXY header, which the v2 header's TLVs exceed.
func TestProxyOutNginx(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	be := startEchoBackend(t, nil)
	listen, ready := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	ngx := startNginx(t, fmt.Sprintf(`  log_format pp 'client=$proxy_protocol_addr:$proxy_protocol_port via=$remote_addr bytes_in=$bytes_received';
  server {
    listen %s proxy_protocol;
    proxy_pass %s;
    proxy_half_close on; # tunnel nc half-closes once its input ends
    access_log /dev/stdout pp;
  }
  server {
    listen %s;
    return "ready\n";
  }`, listen, be.addr, ready), ready)

	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1,127.0.0.5", "--allow-id", allowAlice,
		"--route", "ngx="+listen, "--route-proxy", "ngx=v1")...)
	for _, c := range proxyOutClients(ca, gw) {
		t.Run(c.name, func(t *testing.T) {
			mark := ngx.stdout.mark()
			line := "through nginx from " + c.name + "\n"
			got, client, err := c.echo(t, "ngx", line)
			if err != nil {
				t.Fatal(err)
			}
			if got != line {
				t.Errorf("echo through nginx: got %q, want %q", got, line)
			}
			if client == "" {
				t.Fatal("no client address to look for")
			}
			l := ngx.waitStdout(t, mark, eventTimeout, "client="+client+" ")
			if !strings.Contains(l, "via=127.0.0.1 ") {
				t.Errorf("nginx log line does not show the gateway (127.0.0.1) as the connection's source: %q", l)
			}
			if !strings.Contains(l, fmt.Sprintf("bytes_in=%d", len(line))) {
				t.Errorf("nginx log line does not count the %d bytes sent: %q", len(line), l)
			}
		})
	}
}
