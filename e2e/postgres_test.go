package e2e_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPostgresThroughForward runs psql and pgbench against a PostgreSQL server of the test through "tunnel forward" and the
// gateway: the way the project is meant to be used.
func TestPostgresThroughForward(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starting PostgreSQL takes seconds")
	}
	t.Parallel()
	pgBin := postgresBinDir(t)
	psql := pgTool(t, pgBin, "psql")
	pg := startPostgres(t, pgBin)

	ca := getCA(t)
	gw := startGateway(t, ca.gatewayArgs("--allow", "127.0.0.1", "--allow-id", allowAlice, "--route", "pg="+pg.addr)...)
	locals := startForward(t, ca.clientArgs(gw.addr, ca.alice), "127.0.0.1:0=pg")
	host, port, err := net.SplitHostPort(locals["pg"])
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable", "PGAPPNAME=e2e"}
	sql := func(stdin string, args ...string) string {
		t.Helper()
		base := []string{"-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres"}
		r := run(t, runTimeout, strings.NewReader(stdin), env, psql, append(base, args...)...)
		if r.code != 0 {
			t.Fatalf("psql %s: %v", strings.Join(args, " "), r)
		}
		return strings.TrimSpace(string(r.stdout))
	}

	if got := sql("", "-c", "select 41+1"); got != "42" {
		t.Errorf("select 41+1 = %q, want 42", got)
	}
	sql("", "-c", "create table e2e_rows (id int primary key, note text not null)")
	sql("", "-c", "insert into e2e_rows select i, md5(i::text) from generate_series(1, 1000) as i")
	if got := sql("", "-c", "select count(*), sum(id) from e2e_rows"); got != "1000|500500" {
		t.Errorf("after inserting 1000 rows: count|sum = %q, want 1000|500500", got)
	}
	// 1000 more rows from the client side, with COPY: data goes the other way.
	var rows strings.Builder
	for i := 1001; i <= 2000; i++ {
		fmt.Fprintf(&rows, "%d\trow %d %s\n", i, i, strings.Repeat("x", i%97))
	}
	sql(rows.String(), "-c", `\copy e2e_rows from pstdin`)
	if got := sql("", "-c", "select count(*), sum(id), sum(length(note)) from e2e_rows where id > 1000"); got != copySums() {
		t.Errorf("after COPY of 1000 rows: count|sum|length = %q, want %s", got, copySums())
	}
	// And back: every row, in order, compared with what was sent.
	if got := sql("", "-c", "select id || E'\\t' || note from e2e_rows where id > 1000 order by id"); got+"\n" != rows.String() {
		t.Errorf("the 1000 copied rows read back differ (%d bytes, want %d)", len(got)+1, rows.Len())
	}
	ev := gw.waitEvent(t, 0, eventTimeout, isEvent("stream_close", "route", "pg"))
	if !strings.Contains(ev.String(), "spiffe://e2e/alice") {
		t.Errorf("stream_close for route pg does not name the identity: %v", ev)
	}

	pgbench := pgTool(t, pgBin, "pgbench")
	conn := []string{"-h", host, "-p", port, "-U", "postgres"}
	if r := run(t, 60*time.Second, nil, env, pgbench, append(append([]string{"-i", "-q", "-s", "1"}, conn...), "postgres")...); r.code != 0 {
		t.Fatalf("pgbench -i: %v", r)
	}
	r := run(t, 60*time.Second, nil, env, pgbench, append(append([]string{"-n", "-c", "8", "-j", "2", "-t", "100"}, conn...), "postgres")...)
	if r.code != 0 {
		t.Fatalf("pgbench -c 8 -t 100: %v\n%s", r, r.stdout)
	}
	out := string(r.stdout)
	if !strings.Contains(out, "number of transactions actually processed: 800/800") {
		t.Errorf("pgbench did not process 800 of 800 transactions:\n%s", out)
	}
	if strings.Contains(out, "number of failed transactions:") && !strings.Contains(out, "number of failed transactions: 0 ") {
		t.Errorf("pgbench reports failed transactions:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "tps") || strings.HasPrefix(line, "latency average") {
			t.Log("pgbench through the tunnel: " + line)
		}
	}
}

// copySums is what "count(*), sum(id), sum(length(note))" gives for the
// rows that the test copies in.
func copySums() string {
	n, sum, length := 0, 0, 0
	for i := 1001; i <= 2000; i++ {
		n++
		sum += i
		length += len(fmt.Sprintf("row %d %s", i, strings.Repeat("x", i%97)))
	}
	return fmt.Sprintf("%d|%d|%d", n, sum, length)
}

// postgresBinDir returns the newest /usr/lib/postgresql/*/bin that has
// initdb and postgres, or skips the test.
func postgresBinDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	t.Skip("PostgreSQL server programs (initdb, postgres) not found in /usr/lib/postgresql/*/bin: install the postgresql package to run this test")
	return ""
}

// pgTool finds a PostgreSQL client program in dir or on PATH, or skips.
func pgTool(t *testing.T, dir, name string) string {
	t.Helper()
	if p := filepath.Join(dir, name); isExec(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Skipf("%s not found in %s or on PATH: install the postgresql-client package to run this test", name, dir)
	return ""
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// postgres is a PostgreSQL server started by a test.
type postgres struct {
	*proc
	addr string // 127.0.0.1:PORT
	dir  string // holds the socket .s.PGSQL.PORT
}

// startPostgres creates a cluster in a fresh directory under /tmp (trust
// authentication, user postgres) and starts a server on 127.0.0.1 and a
// free port, with its socket in that directory. As root, both run as the
// postgres user through runuser (PostgreSQL refuses to run as root). The
// server is stopped (fast shutdown) and the directory removed in t.Cleanup.
func startPostgres(t *testing.T, bin string) *postgres {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "portcullis-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var prefix []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL must run as another user, and there is no user postgres: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL must run as user postgres, and runuser is not found: %v", err)
		}
		prefix = []string{runuser, "-u", "postgres", "--"}
	}
	command := func(name string, args ...string) (string, []string) {
		all := append(append(slices.Clone(prefix), filepath.Join(bin, name)), args...)
		return all[0], all[1:]
	}

	data := filepath.Join(dir, "data")
	exe, args := command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if r := runIn(t, dir, 60*time.Second, nil, nil, exe, args...); r.code != 0 {
		t.Fatalf("initdb: %v\n%s", r, r.stdout)
	}

	addr := closedAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	exe, args = command("postgres", "-D", data, "-k", dir, "-p", port,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=40")
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	p := startCmd(t, "postgres", cmd)
	// Registered after startCmd's cleanup, so it runs first: a fast shutdown
	// (SIGINT) of the postmaster itself, not of runuser.
	t.Cleanup(func() { stopPostgres(t, p, data) })
	p.waitLine(t, 0, 30*time.Second, "ready to accept connections")
	return &postgres{proc: p, addr: addr, dir: dir}
}

// stopPostgres asks the postmaster of the cluster in data for a fast
// shutdown and waits for it, bounded; startCmd's cleanup kills what is left.
func stopPostgres(t *testing.T, p *proc, data string) {
	if p.exited() {
		return
	}
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Errorf("postgres did not stop within %v of a fast shutdown", stopTimeout)
	}
}
