package e2e_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Scale-out: three gateways that share nothing but their PKI and rules,
// behind a real HAProxy (mode tcp, leastconn, send-proxy-v2, health checks
// on /readyz of --admin), as docs/scale-out.md sets them up.
//
// Addresses: the gateways listen on 127.0.0.11, .12 and .13; HAProxy
// listens on 127.0.0.20 and connects to the gateways from 127.0.0.2, the
// one --trusted-proxy. The clients connect from 127.0.0.1, the one address
// on --allow; 127.0.0.9 plays a client the rules refuse.
const (
	lbListenIP = "127.0.0.20"
	lbSourceIP = "127.0.0.2"
	clientIP   = "127.0.0.1"
	outsideIP  = "127.0.0.9"
)

// farm is the gateways and the balancer in front of them.
type farm struct {
	ca    *testCA
	gws   []*gatewayProc
	names []string // gw1, gw2, gw3: HAProxy's names of the gateways
	lb    *lbProc
	lbAdr string // where the clients connect
}

func startFarm(t *testing.T, backend string) *farm {
	t.Helper()
	lookTool(t, "haproxy")
	ca := getCA(t)
	f := &farm{ca: ca}
	var servers strings.Builder
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.1%d", i+1)
		admin := freePort(t, ip)
		gw := startGateway(t,
			"--listen", ip+":0", "--admin", admin,
			"--cert", ca.server.cert, "--key", ca.server.key, "--ca", ca.caFile,
			"--handshake-timeout", "5s", "--dial-timeout", "3s", "--drain-timeout", "8s",
			"--allow", clientIP, "--trusted-proxy", lbSourceIP, "--allow-id", allowAlice,
			"--route", "echo=builtin:echo", "--route", "tcp="+backend)
		gw.name = fmt.Sprintf("gateway gw%d (%s)", i+1, gw.addr)
		name := fmt.Sprintf("gw%d", i+1)
		_, aport, _ := net.SplitHostPort(admin)
		fmt.Fprintf(&servers, "  server %s %s port %s\n", name, gw.addr, aport)
		f.gws = append(f.gws, gw)
		f.names = append(f.names, name)
	}
	f.lbAdr = freePort(t, lbListenIP)
	ready := freePort(t, "127.0.0.1")
	f.lb = startHAProxy(t, fmt.Sprintf(`global
  log stdout format raw local0
defaults
  mode tcp
  log global
  option dontlognull
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
  retries 3
  option redispatch 1
frontend ready
  mode http
  bind %s
  monitor-uri /ready
frontend portcullis
  bind %s
  log-format "client=%%ci:%%cp server=%%s retries=%%rc bytes_in=%%U state=%%ts"
  default_backend gateways
backend gateways
  balance leastconn
  source %s
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 200ms fall 2 rise 2 send-proxy-v2 check
%s`, ready, f.lbAdr, lbSourceIP, servers.String()), ready)
	return f
}

// viaLB returns the tunnel arguments that reach the gateways through the
// balancer (its address is not in the certificate: the name is).
func (f *farm) viaLB() []string {
	return append(f.ca.clientArgs(f.lbAdr, f.ca.alice), "--server-name", "gw.test")
}

// direct returns the tunnel arguments that name the gateways themselves,
// in the order given, for the tunnel's own failover.
func (f *farm) direct(gws ...*gatewayProc) []string {
	args := []string{"--cert", f.ca.alice.cert, "--key", f.ca.alice.key, "--ca", f.ca.caFile, "--server-name", "gw.test"}
	for _, gw := range gws {
		args = append(args, "--gateway", gw.addr)
	}
	return args
}

// marks returns each gateway's log position.
func (f *farm) marks() []int {
	m := make([]int, len(f.gws))
	for i, gw := range f.gws {
		m[i] = gw.stderr.mark()
	}
	return m
}

// opened returns, for each gateway, the stream_open events of route since
// marks.
func (f *farm) opened(marks []int, route string) [][]event {
	out := make([][]event, len(f.gws))
	for i, gw := range f.gws {
		for _, e := range gw.stderr.events(marks[i]) {
			if isEvent("stream_open", "route", route)(e) {
				out[i] = append(out[i], e)
			}
		}
	}
	return out
}

// waitOpened waits until the gateways have logged n stream_open events of
// route since marks in all, and returns them per gateway.
func (f *farm) waitOpened(t *testing.T, marks []int, route string, n int) [][]event {
	t.Helper()
	var evs [][]event
	total := func() int {
		evs = f.opened(marks, route)
		k := 0
		for _, e := range evs {
			k += len(e)
		}
		return k
	}
	if !waitUntil(eventTimeout, func() bool { return total() >= n }) {
		t.Errorf("the gateways logged %d stream_open events of route %s, want %d", total(), route, n)
	}
	return evs
}

// counts formats the number of events per gateway.
func (f *farm) counts(evs [][]event) string {
	var parts []string
	for i, e := range evs {
		parts = append(parts, fmt.Sprintf("%s %d", f.names[i], len(e)))
	}
	return strings.Join(parts, ", ")
}

// checkProxied checks that every event names a client of clientIP as its
// peer and the balancer's source address as via.
func checkProxied(t *testing.T, evs [][]event) {
	t.Helper()
	for _, es := range evs {
		for _, e := range es {
			if !strings.HasPrefix(e.str("peer"), clientIP+":") || !strings.HasPrefix(e.str("via"), lbSourceIP+":") {
				t.Errorf("event does not name the client %s as peer and the balancer %s as via: %v", clientIP, lbSourceIP, e)
				return
			}
		}
	}
}

// ncRounds runs n "tunnel nc tcp" round trips with the tunnel arguments
// args, one after the other, and returns how many failed (each failure is
// logged).
func ncRounds(t *testing.T, n int, what string, args []string) int {
	t.Helper()
	failed := 0
	for i := range n {
		line := fmt.Sprintf("%s, round trip %d\n", what, i)
		r := tunnel(t, strings.NewReader(line), append([]string{"nc", "tcp", "--log-level", "warn"}, args...)...)
		if r.code != exitOK || string(r.stdout) != line {
			failed++
			t.Errorf("%s, round trip %d: stdout %q, want %q; %v", what, i, r.stdout, line, r)
		}
	}
	return failed
}

// TestScaleOutHAProxy runs the farm and checks, in order: streams spread
// over the three gateways, which see the clients' own addresses; the
// network gate judges the address from the PROXY header; killing a gateway
// loses no new connection (through HAProxy, and with the tunnel's own
// failover) and cuts no stream open on another gateway; a gateway drained
// by SIGTERM finishes its stream while new ones go to the others.
func TestScaleOutHAProxy(t *testing.T) {
	t.Parallel()
	be := startEchoBackend(t, nil)
	f := startFarm(t, be.addr)
	rounds := 30
	if testing.Short() {
		rounds = 9
	}

	t.Run("nc-spread", func(t *testing.T) {
		marks, lbMark := f.marks(), f.lb.stdout.mark()
		if failed := ncRounds(t, rounds, "tunnel nc through HAProxy", f.viaLB()); failed > 0 {
			t.Fatalf("%d of %d round trips failed", failed, rounds)
		}
		evs := f.waitOpened(t, marks, "tcp", rounds)
		t.Logf("%d tunnel nc round trips through HAProxy, 0 failed; streams per gateway: %s", rounds, f.counts(evs))
		for i, e := range evs {
			if len(e) == 0 { // leastconn takes turns among gateways of equal load
				t.Errorf("%s got no stream of %d: %s", f.names[i], rounds, f.counts(evs))
			}
		}
		checkProxied(t, evs)
		// HAProxy's own log has the same clients, one line per session.
		for _, es := range evs {
			for _, e := range es {
				f.lb.waitStdout(t, lbMark, eventTimeout, "client="+e.str("peer")+" ")
			}
		}
	})

	t.Run("forward", func(t *testing.T) {
		marks := f.marks()
		locals := startForward(t, f.viaLB(), "127.0.0.1:0=tcp")
		deadline := time.Now().Add(runTimeout)
		for i := range 5 {
			if err := roundTrip(locals["tcp"], uint64(7000+i), 256<<10, deadline); err != nil {
				t.Fatalf("forwarded connection %d: %v", i, err)
			}
		}
		evs := f.waitOpened(t, marks, "tcp", 5)
		checkProxied(t, evs)
		t.Logf("tunnel forward through HAProxy: 5 connections, 0 failed; streams per gateway: %s", f.counts(evs))
	})

	t.Run("deny-by-header-address", func(t *testing.T) {
		marks := f.marks()
		local, got, err := directClient{ca: f.ca, id: f.ca.alice, from: outsideIP}.echo(t, f.lbAdr, "echo", "let me in\n")
		if err == nil {
			t.Fatalf("a client from %s (not on --allow) got through HAProxy: echo %q", outsideIP, got)
		}
		var deny event
		found := waitUntil(eventTimeout, func() bool {
			for i, gw := range f.gws {
				for _, e := range gw.stderr.events(marks[i]) {
					if isEvent("deny", "peer", local)(e) {
						deny = e
						return true
					}
				}
			}
			return false
		})
		if !found {
			t.Fatalf("no gateway logged a deny event for peer %s", local)
		}
		if !strings.HasPrefix(deny.str("via"), lbSourceIP+":") {
			t.Errorf("deny event does not name the balancer %s as via: %v", lbSourceIP, deny)
		}
	})

	t.Run("kill-one", func(t *testing.T) {
		// A forwarded connection held open across the kill, on whichever
		// gateway leastconn gives it.
		marks := f.marks()
		fwd, locals := startForwardProc(t, f.viaLB(), "127.0.0.1:0=tcp")
		held, err := net.DialTimeout("tcp", locals["tcp"], runTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		_ = held.SetDeadline(time.Now().Add(2 * runTimeout))
		echoLine(t, held, "before the kill\n")
		evs := f.waitOpened(t, marks, "tcp", 1)
		carrier := -1
		for i, e := range evs {
			if len(e) > 0 {
				carrier = i
			}
		}
		if carrier < 0 {
			t.Fatal("no gateway carries the held connection")
		}
		victim := (carrier + 1) % len(f.gws)
		t.Logf("the held connection is on %s; killing %s", f.names[carrier], f.names[victim])

		lbMark := f.lb.stdout.mark()
		dead := f.gws[victim]
		if err := dead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		dead.wait(t, stopTimeout)

		// At once, before the health check has noticed: HAProxy's connect
		// fails and it redispatches to another gateway.
		marks = f.marks()
		failed := ncRounds(t, rounds, "through HAProxy right after the kill", f.viaLB())
		evs = f.waitOpened(t, marks, "tcp", rounds-failed)
		t.Logf("right after the kill: %d tunnel nc round trips through HAProxy, %d failed; streams per gateway: %s",
			rounds, failed, f.counts(evs))
		if len(evs[victim]) != 0 {
			t.Errorf("the killed %s logged streams", f.names[victim])
		}
		checkProxied(t, evs)

		// Once the health check has marked it down.
		f.lb.waitStdout(t, lbMark, eventTimeout, f.names[victim], "DOWN")
		redispatched := 0
		lines, _ := f.lb.stdout.snapshot()
		for _, l := range lines[lbMark:] {
			if strings.Contains(l, "retries=+") { // HAProxy's mark of a redispatch
				redispatched++
			}
		}
		t.Logf("HAProxy redispatched %d connections from the killed %s to another gateway", redispatched, f.names[victim])
		marks = f.marks()
		failed = ncRounds(t, rounds, "through HAProxy with the gateway down", f.viaLB())
		evs = f.waitOpened(t, marks, "tcp", rounds-failed)
		t.Logf("with %s marked down: %d tunnel nc round trips through HAProxy, %d failed; streams per gateway: %s",
			f.names[victim], rounds, failed, f.counts(evs))

		// The tunnel's own failover: the dead gateway first in its list.
		order := []*gatewayProc{dead}
		for i, gw := range f.gws {
			if i != victim {
				order = append(order, gw)
			}
		}
		marks = f.marks()
		failed = ncRounds(t, rounds, "tunnel --gateway dead --gateway b --gateway c", f.direct(order...))
		evs = f.opened(marks, "tcp")
		t.Logf("tunnel failover over --gateway %s,%s,%s: %d round trips, %d failed; streams per gateway: %s",
			f.names[victim], f.names[(victim+1)%3], f.names[(victim+2)%3], rounds, failed, f.counts(evs))
		for _, es := range evs {
			for _, e := range es {
				if !strings.HasPrefix(e.str("peer"), clientIP+":") || e.str("via") != "" {
					t.Errorf("a direct connection shows as proxied: %v", e)
				}
			}
		}

		// The held connection carried on, and its session takes new
		// streams.
		echoLine(t, held, "after the kill\n")
		if err := roundTrip(locals["tcp"], 7100, 256<<10, time.Now().Add(runTimeout)); err != nil {
			t.Errorf("a new forwarded connection after the kill: %v", err)
		}
		if fwd.exited() {
			t.Errorf("tunnel forward exited")
		}
	})

	t.Run("drain-one", func(t *testing.T) {
		// A rolling restart: SIGTERM a gateway that carries a stream (a
		// "tunnel nc" held open through HAProxy). The stream goes on, new
		// connections go to the others, and the gateway exits 0.
		marks := f.marks()
		held := startHeldNC(t, append([]string{"tcp"}, f.viaLB()...)...)
		held.echo(t, []byte("before SIGTERM\n"))
		evs := f.waitOpened(t, marks, "tcp", 1)
		carrier := -1
		for i, e := range evs {
			if len(e) > 0 {
				carrier = i
			}
		}
		if carrier < 0 {
			t.Fatal("no gateway carries the held tunnel nc")
		}
		gw := f.gws[carrier]
		lbMark, gwMark := f.lb.stdout.mark(), gw.stderr.mark()
		gw.signal(t, syscall.SIGTERM)
		gw.waitEvent(t, gwMark, eventTimeout, isEvent("draining"))

		marks = f.marks()
		n := rounds / 3
		failed := ncRounds(t, n, "through HAProxy while a gateway drains", f.viaLB())
		evs = f.waitOpened(t, marks, "tcp", n-failed)
		t.Logf("while %s drains: %d tunnel nc round trips through HAProxy, %d failed; streams per gateway: %s",
			f.names[carrier], n, failed, f.counts(evs))
		if len(evs[carrier]) != 0 {
			t.Errorf("the draining %s took new streams", f.names[carrier])
		}
		held.echo(t, randomBytes(8, 64<<10))
		if gw.exited() {
			t.Fatalf("%s exited while a stream was open", f.names[carrier])
		}
		held.finish(t)
		if code := gw.wait(t, stopTimeout); code != exitOK {
			t.Errorf("%s exit status %d after draining, want 0", f.names[carrier], code)
		}
		f.lb.waitStdout(t, lbMark, eventTimeout, f.names[carrier], "DOWN")
	})
}

// echoLine writes line to c and checks that it comes back.
func echoLine(t *testing.T, c net.Conn, line string) {
	t.Helper()
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatalf("writing %q: %v", line, err)
	}
	buf := make([]byte, len(line))
	n, err := io.ReadFull(c, buf)
	if err != nil || string(buf[:n]) != line {
		t.Fatalf("echo of %q: got %q, %v", line, buf[:n], err)
	}
}

// TestScaleOutNginx puts two gateways behind nginx's stream module
// (proxy_protocol on: a PROXY v1 line; least_conn; passive health checks
// with proxy_next_upstream), as docs/scale-out.md sets it up, and checks
// that the gateways see the client's address and that a SIGKILLed gateway
// loses no new connection.
func TestScaleOutNginx(t *testing.T) {
	t.Parallel()
	lookTool(t, "nginx")
	ca := getCA(t)
	be := startEchoBackend(t, nil)
	const source = "127.0.0.3" // nginx's address towards the gateways
	var gws []*gatewayProc
	var upstream strings.Builder
	for i, ip := range []string{"127.0.0.14", "127.0.0.15"} {
		gw := startGateway(t,
			"--listen", ip+":0",
			"--cert", ca.server.cert, "--key", ca.server.key, "--ca", ca.caFile,
			"--handshake-timeout", "5s", "--dial-timeout", "3s", "--drain-timeout", "5s",
			"--allow", clientIP, "--trusted-proxy", source, "--allow-id", allowAlice,
			"--route", "tcp="+be.addr)
		gw.name = fmt.Sprintf("gateway %d (%s)", i+1, gw.addr)
		fmt.Fprintf(&upstream, "    server %s max_fails=1 fail_timeout=10s;\n", gw.addr)
		gws = append(gws, gw)
	}
	listen, ready := freePort(t, lbListenIP), freePort(t, "127.0.0.1")
	startNginx(t, fmt.Sprintf(`  upstream gateways {
    least_conn;
%s  }
  server {
    listen %s;
    proxy_pass gateways;
    proxy_protocol on;
    proxy_bind %s;
    proxy_connect_timeout 2s;
    proxy_next_upstream on;
    proxy_next_upstream_tries 2;
  }
  server {
    listen %s;
    return "ready\n";
  }`, upstream.String(), listen, source, ready), ready)
	args := append(ca.clientArgs(listen, ca.alice), "--server-name", "gw.test")

	count := func(marks []int) ([]int, int) {
		per := make([]int, len(gws))
		total := 0
		for i, gw := range gws {
			for _, e := range gw.stderr.events(marks[i]) {
				if !isEvent("stream_open", "route", "tcp")(e) {
					continue
				}
				per[i]++
				total++
				if !strings.HasPrefix(e.str("peer"), clientIP+":") || !strings.HasPrefix(e.str("via"), source+":") {
					t.Errorf("stream_open does not name the client %s as peer and nginx %s as via: %v", clientIP, source, e)
				}
			}
		}
		return per, total
	}
	marksOf := func() []int { return []int{gws[0].stderr.mark(), gws[1].stderr.mark()} }
	rounds := 10

	marks := marksOf()
	if failed := ncRounds(t, rounds, "tunnel nc through nginx", args); failed > 0 {
		t.Fatalf("%d of %d round trips failed", failed, rounds)
	}
	waitUntil(eventTimeout, func() bool { _, n := count(marks); return n >= rounds })
	per, _ := count(marks)
	t.Logf("%d tunnel nc round trips through nginx, 0 failed; streams per gateway: %v", rounds, per)

	if err := gws[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gws[0].wait(t, stopTimeout)
	marks = marksOf()
	failed := ncRounds(t, rounds, "tunnel nc through nginx after a kill", args)
	waitUntil(eventTimeout, func() bool { _, n := count(marks); return n >= rounds-failed })
	per, _ = count(marks)
	t.Logf("after SIGKILL of the first gateway: %d tunnel nc round trips through nginx, %d failed; streams per gateway: %v", rounds, failed, per)
	if per[1] != rounds {
		t.Errorf("the surviving gateway logged %d streams, want %d", per[1], rounds)
	}
}
