package e2e_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusalsTellRealClients: routes refused by the gateway (bob's
// identity is not allowed) answer psql, redis-cli and curl in their own
// protocols, so each prints the gateway's reason.
func TestRefusalsTellRealClients(t *testing.T) {
	t.Parallel()
	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice,
		"--route", "pg=builtin:echo", "--route", "cache=builtin:echo", "--route", "web=builtin:echo")...)
	locals := startForward(t, append(ca.clientArgs(gw.addr, ca.bob), "--lazy", "--refusal", "pg=postgres,cache=redis", "--refusal", "web=http"),
		"127.0.0.1:0=pg", "127.0.0.1:0=cache", "127.0.0.1:0=web")
	const want = "portcullis: forbidden: "

	t.Run("psql", func(t *testing.T) {
		psql, err := exec.LookPath("psql")
		if err != nil {
			t.Skip("psql not found: install the postgresql-client package to run this test")
		}
		host, port, _ := net.SplitHostPort(locals["pg"])
		// The default sslmode (prefer) sends an SSLRequest first.
		r := run(t, runTimeout, nil, []string{"PGCONNECT_TIMEOUT=10"}, psql, "-X", "-h", host, "-p", port, "-U", "app", "-d", "app", "-c", "select 1")
		if r.code != 2 || !strings.Contains(r.stderr, "FATAL:  "+want) || !strings.Contains(r.stderr, "spiffe://outsider/bob") {
			t.Errorf("psql: %v; want exit 2 and FATAL:  %s... naming bob", r, want)
		}
		t.Logf("psql says: %s", strings.TrimSpace(r.stderr))
	})
	t.Run("redis-cli", func(t *testing.T) {
		cli, err := exec.LookPath("redis-cli")
		if err != nil {
			t.Skip("redis-cli not found: install the redis-tools package to run this test")
		}
		host, port, _ := net.SplitHostPort(locals["cache"])
		r := run(t, runTimeout, nil, nil, cli, "-h", host, "-p", port, "PING")
		if out := string(r.stdout) + r.stderr; !strings.Contains(out, "ERR "+want) || !strings.Contains(out, "spiffe://outsider/bob") {
			t.Errorf("redis-cli PING: %v\n%s; want ERR %s... naming bob", r, out, want)
		}
		t.Logf("redis-cli says: %s", strings.TrimSpace(string(r.stdout)))
	})
	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl not found: install the curl package to run this test")
		}
		r := run(t, runTimeout, nil, nil, curl, "-sS", "-w", "\n%{http_code}", "http://"+locals["web"]+"/api")
		if out := string(r.stdout); r.code != 0 || !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "\n502") {
			t.Errorf("curl: %v\n%s; want a 502 whose body starts with %s", r, out, want)
		}
	})
}

// TestPostgresOverUnixSockets: psql connects to a UNIX socket of "tunnel
// forward" (PostgreSQL's .s.PGSQL.PORT naming), and the gateway reaches
// PostgreSQL on its UNIX socket (a unix: backend).
func TestPostgresOverUnixSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starting PostgreSQL takes seconds")
	}
	t.Parallel()
	pgBin := postgresBinDir(t)
	psql := pgTool(t, pgBin, "psql")
	pg := startPostgres(t, pgBin)
	_, pgPort, _ := net.SplitHostPort(pg.addr)
	backend := filepath.Join(pg.dir, ".s.PGSQL."+pgPort)
	if fi, err := os.Stat(backend); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("PostgreSQL's socket %s: %v", backend, err)
	}

	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "pg=unix:"+backend)...)
	sockDir, err := os.MkdirTemp("", "portcullis-e2e-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	if err := os.Chmod(sockDir, 0o755); err != nil { // others may look in, the socket keeps them out
		t.Fatal(err)
	}
	local := filepath.Join(sockDir, ".s.PGSQL.5432")
	fw, tcp := startForwardProc(t, ca.clientArgs(gw.addr, ca.alice), local+"=pg", "127.0.0.1:0=pgtcp")
	if fi, err := os.Stat(local); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the forward's socket %s: %v, %v; want mode 0600", local, fi.Mode(), err)
	}
	r := run(t, runTimeout, nil, []string{"PGCONNECT_TIMEOUT=10"}, psql, "-X", "-A", "-t", "-q", "-h", sockDir, "-p", "5432", "-U", "postgres", "-d", "postgres", "-c", "select 40+2")
	if r.code != 0 || strings.TrimSpace(string(r.stdout)) != "42" {
		t.Fatalf("psql -h %s -p 5432: %v", sockDir, r)
	}
	gw.waitEvent(t, 0, eventTimeout, isEvent("stream_close", "route", "pg"))

	// Another local user (postgres) gets in through neither listener: the
	// socket's mode keeps it out, the same-user check closes its TCP
	// connection and names its uid.
	if os.Geteuid() == 0 {
		pgUser, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("no user postgres: %v", err)
		}
		asPostgres := func(args ...string) result {
			base := []string{"-u", "postgres", "--", psql, "-X", "-A", "-t", "-q", "-U", "postgres", "-d", "postgres", "-c", "select 1"}
			return run(t, runTimeout, nil, []string{"PGCONNECT_TIMEOUT=10"}, "runuser", append(base, args...)...)
		}
		if r := asPostgres("-h", sockDir, "-p", "5432"); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("psql as postgres on the 0600 socket: %v; want permission denied", r)
		}
		host, port, _ := net.SplitHostPort(tcp["pgtcp"])
		mark := fw.stderr.mark()
		if r := asPostgres("-h", host, "-p", port); r.code == 0 || strings.TrimSpace(string(r.stdout)) == "1" {
			t.Errorf("psql as postgres through the TCP listener: %v; want it refused", r)
		}
		ev := fw.waitEvent(t, mark, eventTimeout, isEvent("local_refused", "route", "pgtcp"))
		if got := ev["peer_uid"]; fmt.Sprint(got) != pgUser.Uid {
			t.Errorf("local_refused: peer_uid %v, want %s (postgres): %v", got, pgUser.Uid, ev)
		}
	}
	fw.stop(t)
	if _, err := os.Lstat(local); !os.IsNotExist(err) {
		t.Errorf("the forward's socket after it stopped: %v; want it removed", err)
	}
}
