package config

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/enroll"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/tunnel"
)

// tunnelArgs is a valid command line common to every tunnel subcommand.
func tunnelArgs(f testFiles) []string {
	return []string{"--gateway", "gw.example.com:8443", "--cert", f.cert, "--key", f.key, "--ca", f.ca}
}

func TestParseForward(t *testing.T) {
	f := newTestFiles(t)
	fw, err := ParseForward(append(tunnelArgs(f), "-L", "5432=pg", "--local", "[::1]:6379=redis", "-L", "0=echo"),
		envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Tunnel{
		Gateways: []string{"gw.example.com:8443"}, Cert: f.cert, Key: f.key, CA: f.ca,
		ServerName: "gw.example.com", ConnectTimeout: 10 * time.Second, LogLevel: "info", LogFormat: "console",
	}
	checkTunnel(t, &fw.Tunnel, &want)
	wantLocals := []Local{{"127.0.0.1:5432", "pg"}, {"[::1]:6379", "redis"}, {"127.0.0.1:0", "echo"}}
	if !slices.Equal(fw.Locals, wantLocals) {
		t.Errorf("Locals = %v, want %v", fw.Locals, wantLocals)
	}
}

func checkTunnel(t *testing.T, got, want *Tunnel) {
	t.Helper()
	if !slices.Equal(got.Gateways, want.Gateways) {
		t.Errorf("Gateways = %q, want %q", got.Gateways, want.Gateways)
	}
	g, w := *got, *want
	g.Gateways, w.Gateways = nil, nil
	if g.Cert != w.Cert || g.Key != w.Key || g.CA != w.CA || g.ServerName != w.ServerName || g.Direct != w.Direct ||
		g.ConnectTimeout != w.ConnectTimeout || g.LogLevel != w.LogLevel || g.LogFormat != w.LogFormat {
		t.Errorf("Tunnel =\n%+v\nwant\n%+v", g, w)
	}
}

func TestParseForwardEnvOnly(t *testing.T) {
	f := newTestFiles(t)
	env := map[string]string{
		"TUNNEL_GATEWAY": "[2001:db8::1]:8443, gw2.example.com:8443", "TUNNEL_CERT": f.cert, "TUNNEL_KEY": f.key,
		"TUNNEL_CA": f.ca, "TUNNEL_DIRECT": "true", "TUNNEL_CONNECT_TIMEOUT": "3s", "TUNNEL_LOG_LEVEL": "debug",
		"TUNNEL_LOG_FORMAT": "json", "TUNNEL_LOCAL": "5432=pg, localhost:6379=redis",
	}
	fw, err := ParseForward(nil, envMap(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Tunnel{
		Gateways: []string{"[2001:db8::1]:8443", "gw2.example.com:8443"}, Cert: f.cert, Key: f.key, CA: f.ca,
		ServerName: "2001:db8::1", Direct: true, ConnectTimeout: 3 * time.Second, LogLevel: "debug", LogFormat: "json",
	}
	checkTunnel(t, &fw.Tunnel, &want)
	wantLocals := []Local{{"127.0.0.1:5432", "pg"}, {"localhost:6379", "redis"}}
	if !slices.Equal(fw.Locals, wantLocals) {
		t.Errorf("Locals = %v, want %v", fw.Locals, wantLocals)
	}
}

func TestParseForwardFlagsWinOverEnv(t *testing.T) {
	f := newTestFiles(t)
	env := map[string]string{
		"TUNNEL_GATEWAY": "a.example.com:1", "TUNNEL_CERT": "/nonexistent", "TUNNEL_KEY": f.key, "TUNNEL_CA": f.ca,
		"TUNNEL_SERVER_NAME": "env.example.com", "TUNNEL_DIRECT": "true", "TUNNEL_LOCAL": "1=a,2=b",
		"TUNNEL_CONNECT_TIMEOUT": "bad",
	}
	args := []string{"--gateway", "b.example.com:2", "--gateway", "c.example.com:3", "--cert", f.cert,
		"--server-name", "flag.example.com", "--direct=false", "-L", "3=c", "--connect-timeout", "1s"}
	fw, err := ParseForward(args, envMap(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Tunnel{
		Gateways: []string{"b.example.com:2", "c.example.com:3"}, Cert: f.cert, Key: f.key, CA: f.ca,
		ServerName: "flag.example.com", ConnectTimeout: time.Second, LogLevel: "info", LogFormat: "console",
	}
	checkTunnel(t, &fw.Tunnel, &want)
	if !slices.Equal(fw.Locals, []Local{{"127.0.0.1:3", "c"}}) {
		t.Errorf("Locals = %v, want only the flag's", fw.Locals)
	}
}

func TestParseNC(t *testing.T) {
	f := newTestFiles(t)
	tests := []struct {
		args  []string
		route string
	}{
		{append(tunnelArgs(f), "pg"), "pg"},
		{append([]string{"pg.gw.example.com"}, tunnelArgs(f)...), "pg.gw.example.com"},
		{append(tunnelArgs(f), "--", "-odd"), "-odd"},
	}
	for _, tt := range tests {
		n, err := ParseNC(tt.args, envMap(nil), nil)
		if err != nil {
			t.Errorf("ParseNC(%q): %v", tt.args, err)
			continue
		}
		if n.Route != tt.route || n.ServerName != "gw.example.com" || n.LogFormat != "console" {
			t.Errorf("ParseNC(%q): route %q server name %q log format %q", tt.args, n.Route, n.ServerName, n.LogFormat)
		}
	}
}

func TestParseTunnelErrors(t *testing.T) {
	f := newTestFiles(t)
	base := tunnelArgs(f)
	without := func(flag string) []string {
		var out []string
		for i := 0; i < len(base); i += 2 {
			if base[i] != flag {
				out = append(out, base[i], base[i+1])
			}
		}
		return out
	}
	tests := []struct {
		name string
		nc   bool // parse as "tunnel nc" instead of "tunnel forward"
		args []string
		env  map[string]string
		want []string
	}{
		{"no gateway", false, append(without("--gateway"), "-L", "1=a"), nil,
			[]string{"--gateway (TUNNEL_GATEWAY): required: no gateway", `got ""`, "want HOST:PORT", "gw.example.com:8443"}},
		{"gateway without port", false, append(base, "--gateway", "gw.example.com", "-L", "1=a"), nil,
			[]string{"--gateway (TUNNEL_GATEWAY): not a gateway address", "no port", `got "gw.example.com"`}},
		{"gateway port 0", false, append(without("--gateway"), "--gateway", "gw.example.com:0", "-L", "1=a"), nil,
			[]string{"--gateway (TUNNEL_GATEWAY): not a gateway address", `port "0" is not a number from 1 to 65535`}},
		{"bad gateway in env", false, append(without("--gateway"), "-L", "1=a"),
			map[string]string{"TUNNEL_GATEWAY": "a.example.com:1,b.example.com:0"},
			[]string{"--gateway (TUNNEL_GATEWAY): not a gateway address", `port "0" is not a number from 1 to 65535`, `got "b.example.com:0"`}},
		{"no cert", false, append(without("--cert"), "-L", "1=a"), nil,
			[]string{"--cert (TUNNEL_CERT): required", `got ""`, "client certificate chain"}},
		{"no key", false, append(without("--key"), "-L", "1=a"), nil,
			[]string{"--key (TUNNEL_KEY): required", `got ""`}},
		{"no ca", false, append(without("--ca"), "-L", "1=a"), nil,
			[]string{"--ca (TUNNEL_CA): required", `got ""`, "sign the gateway's certificate"}},
		{"ca unreadable", false, append(base, "--ca", "/nonexistent/ca.pem", "-L", "1=a"), nil,
			[]string{"--ca (TUNNEL_CA): cannot read the file", `got "/nonexistent/ca.pem"`}},
		{"bad server name", false, append(base, "--server-name", "gw example", "-L", "1=a"), nil,
			[]string{"--server-name (TUNNEL_SERVER_NAME): not a host name or IP address", `got "gw example"`, "e.g. gw.example.com"}},
		{"connect timeout 0", false, append(base, "--connect-timeout", "0s", "-L", "1=a"), nil,
			[]string{"--connect-timeout (TUNNEL_CONNECT_TIMEOUT): must be greater than 0", `got "0s"`, "e.g. 10s"}},
		{"connect timeout not a duration", false, append(base, "-L", "1=a"), map[string]string{"TUNNEL_CONNECT_TIMEOUT": "10"},
			[]string{"--connect-timeout (TUNNEL_CONNECT_TIMEOUT): not a duration", `got "10" from $TUNNEL_CONNECT_TIMEOUT`}},
		{"log level", false, append(base, "--log-level", "trace", "-L", "1=a"), nil,
			[]string{"--log-level (TUNNEL_LOG_LEVEL): unknown value", `got "trace"`, `"debug", "info", "warn" or "error"`}},
		{"log format", false, append(base, "-L", "1=a"), map[string]string{"TUNNEL_LOG_FORMAT": "xml"},
			[]string{"--log-format (TUNNEL_LOG_FORMAT): unknown value", `got "xml"`, `"json" or "console"`}},
		{"direct not a boolean", false, append(base, "-L", "1=a"), map[string]string{"TUNNEL_DIRECT": "yes"},
			[]string{"--direct (TUNNEL_DIRECT): not a boolean", `got "yes" from $TUNNEL_DIRECT`, "want true or false"}},
		{"no listener", false, base, nil,
			[]string{"-L/--local (TUNNEL_LOCAL): required: no local listener", `got ""`, "want -L [BIND:]PORT=ROUTE or -L PATH=ROUTE, e.g. -L 5432=pg"}},
		{"bad listener flag", false, append(base, "-L", "5432"), nil,
			[]string{"-L/--local (TUNNEL_LOCAL): invalid value", `no "=" between [BIND:]PORT and ROUTE`, `got "5432" from -L/--local`,
				"want [BIND:]PORT=ROUTE or PATH=ROUTE, e.g. 5432=pg"}},
		{"bad listener env", false, base, map[string]string{"TUNNEL_LOCAL": "5432=pg,70000=x"},
			[]string{"-L/--local (TUNNEL_LOCAL): invalid value", `port "70000" is not a number from 0 to 65535`,
				`got "5432=pg,70000=x" from $TUNNEL_LOCAL`}},
		{"empty bind", false, append(base, "--local", ":5432=pg"), nil,
			[]string{"-L/--local (TUNNEL_LOCAL)", "empty BIND", "0.0.0.0:PORT=ROUTE for every interface", `got ":5432=pg"`}},
		{"two listeners on one address", false, append(base, "-L", "5432=a", "-L", "127.0.0.1:5432=b"), nil,
			[]string{"-L/--local (TUNNEL_LOCAL): 127.0.0.1:5432 is already the listener of \"127.0.0.1:5432=a\"",
				`got "127.0.0.1:5432=b"`, "one -L per address"}},
		{"forward takes no arguments", false, append(base, "-L", "1=a", "pg"), nil,
			[]string{`tunnel forward: unexpected argument "pg"`, "-L [BIND:]PORT=ROUTE"}},
		{"nc without route", true, base, nil,
			[]string{"argument ROUTE: tunnel nc takes exactly one ROUTE argument, not 0", `got ""`, "e.g. tunnel nc [flags] pg"}},
		{"nc with two routes", true, append(base, "a", "b"), nil,
			[]string{"argument ROUTE: tunnel nc takes exactly one ROUTE argument, not 2", `got "a b"`}},
		{"nc bad route", true, append(base, "a/b"), nil,
			[]string{"argument ROUTE: invalid route name", "'/'", `got "a/b"`}},
		{"nc bad setting", true, append(without("--cert"), "pg"), nil,
			[]string{"--cert (TUNNEL_CERT): required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.nc {
				var n *NC
				n, err = ParseNC(tt.args, envMap(tt.env), nil)
				if err == nil {
					t.Fatalf("no error; got %+v", n)
				}
			} else {
				var fw *Forward
				fw, err = ParseForward(tt.args, envMap(tt.env), nil)
				if err == nil {
					t.Fatalf("no error; got %+v", fw)
				}
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			testnet.InOrder(t, err.Error(), tt.want)
		})
	}
}

func TestTunnelValidateBuiltInCode(t *testing.T) {
	err := (&Forward{}).Validate()
	for _, want := range []string{"--gateway (TUNNEL_GATEWAY)", "--cert (TUNNEL_CERT)", "--key (TUNNEL_KEY)",
		"--ca (TUNNEL_CA)", "--connect-timeout", "--log-level", "--log-format", "-L/--local (TUNNEL_LOCAL)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("zero Forward: missing %q in %v", want, err)
		}
	}
	// Without gateways the server name cannot be derived; only the gateway is reported.
	if strings.Contains(err.Error(), "--server-name") {
		t.Errorf("zero Forward: server name reported as well: %v", err)
	}

	f := newTestFiles(t)
	fw, err := ParseForward(append(tunnelArgs(f), "-L", "1=a"), envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	fw.ServerName = ""
	if err := fw.Validate(); err == nil || !strings.Contains(err.Error(), "--server-name (TUNNEL_SERVER_NAME): required") {
		t.Errorf("empty server name: %v", err)
	}
	fw.DefaultServerName()
	if fw.ServerName != "gw.example.com" {
		t.Errorf("DefaultServerName: %q", fw.ServerName)
	}
	fw.Locals = append(fw.Locals, Local{Bind: "nohost", Route: "x"}, Local{Bind: "127.0.0.1:2", Route: "bad route"})
	err = fw.Validate()
	if err == nil || !strings.Contains(err.Error(), `got "nohost=x"`) || !errors.Is(err, mux.ErrRoute) {
		t.Errorf("bad locals built in code: %v", err)
	}
	n := &NC{Tunnel: fw.Tunnel, Route: ""}
	if err := n.Validate(); err == nil || !errors.Is(err, mux.ErrRoute) {
		t.Errorf("NC with an empty route: %v", err)
	}
}

func TestParseLocal(t *testing.T) {
	tests := []struct {
		in   string
		want Local
		err  string
	}{
		{"5432=pg", Local{"127.0.0.1:5432", "pg"}, ""},
		{" 0=pg ", Local{"127.0.0.1:0", "pg"}, ""},
		{"65535=pg", Local{"127.0.0.1:65535", "pg"}, ""},
		{"00080=pg", Local{"127.0.0.1:80", "pg"}, ""},
		{"0.0.0.0:5432=pg", Local{"0.0.0.0:5432", "pg"}, ""},
		{"[::1]:5432=pg", Local{"[::1]:5432", "pg"}, ""},
		{"[::]:5432=pg", Local{"[::]:5432", "pg"}, ""},
		{"[fe80::1%eth0]:80=pg", Local{"[fe80::1%eth0]:80", "pg"}, ""},
		{"localhost:6379=redis", Local{"localhost:6379", "redis"}, ""},
		{"db-1.local.:1=r", Local{"db-1.local.:1", "r"}, ""},
		{"5432=pg.gw.example.com", Local{"127.0.0.1:5432", "pg.gw.example.com"}, ""},
		{"5432=svc:5432", Local{"127.0.0.1:5432", "svc:5432"}, ""},
		{"/run/user/1000/pg.sock=pg", Local{"/run/user/1000/pg.sock", "pg"}, ""},
		{"unix:/tmp/pgdir/.s.PGSQL.5432=pg", Local{"/tmp/pgdir/.s.PGSQL.5432", "pg"}, ""},
		{"/tmp/a=b:c=pg", Local{"/tmp/a=b:c", "pg"}, ""},
		{"unix:pg.sock=pg", Local{}, "not absolute"},
		{"/tmp/dir/=pg", Local{}, "names a directory"},
		{"/" + strings.Repeat("a", MaxUnixPath) + "=pg", Local{}, "the system takes at most 107"},
		{"5432", Local{}, `no "="`},
		{"", Local{}, `no "="`},
		{"=pg", Local{}, "no port"},
		{"5432=", Local{}, "route is empty"},
		{"5432=a b", Local{}, "invalid route name"},
		{"65536=pg", Local{}, `port "65536" is not a number from 0 to 65535`},
		{"-1=pg", Local{}, "not a number"},
		{"+80=pg", Local{}, "not a number"},
		{"0x50=pg", Local{}, "not a number"},
		{":5432=pg", Local{}, "empty BIND"},
		{"::1:5432=pg", Local{}, "an IPv6 address goes in brackets"},
		{"[127.0.0.1]:80=pg", Local{}, "brackets are for IPv6 addresses only"},
		{"[localhost]:80=pg", Local{}, "brackets are for IPv6 addresses only"},
		{"[::1]=pg", Local{}, "no port"},
		{"[::1]:=pg", Local{}, "no port after the colon"},
		{"1.2.3:80=pg", Local{}, "not a valid IPv4 address"},
		{"256.0.0.1:80=pg", Local{}, "not a valid IPv4 address"},
		{"local host:80=pg", Local{}, `host name "local host" holds ' '`},
		{"*:80=pg", Local{}, `holds '*'`},
		{"a:b:80=pg", Local{}, "brackets"},
		{"localhost:http=pg", Local{}, `port "http" is not a number`},
	}
	for _, tt := range tests {
		l, err := ParseLocal(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseLocal(%q) = %+v, %v; want an ErrInvalid error containing %q", tt.in, l, err, tt.err)
			}
			continue
		}
		if err != nil || l != tt.want {
			t.Errorf("ParseLocal(%q) = %+v, %v; want %+v", tt.in, l, err, tt.want)
			continue
		}
		back, err := ParseLocal(l.String())
		if err != nil || back != l {
			t.Errorf("ParseLocal(%q.String()) = %+v, %v", l, back, err)
		}
		text, _ := l.MarshalText()
		var u Local
		if err := u.UnmarshalText(text); err != nil || u != l {
			t.Errorf("UnmarshalText(MarshalText(%+v)) = %+v, %v", l, u, err)
		}
	}
	var u Local
	if err := u.UnmarshalText([]byte("nope")); err == nil || u != (Local{}) {
		t.Errorf("UnmarshalText(nope) = %v and changed the listener to %+v", err, u)
	}
}

// TestForwardLocalSide: UNIX socket listeners, the same-user check (on by
// default for UNIX and loopback listeners only, off from the command line
// or the environment) and the refusal styles per route.
func TestForwardLocalSide(t *testing.T) {
	f := newTestFiles(t)
	fw, err := ParseForward(append(tunnelArgs(f), "-L", "/run/user/1000/pg.sock=pg", "-L", "5432=pg", "-L", "0.0.0.0:6379=redis",
		"-L", "[::1]:8080=web", "--refusal", "pg=postgres,redis=redis", "--refusal", "web=http", "--refusal", "web=reset"), envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !fw.Locals[0].Unix() || fw.Locals[1].Unix() {
		t.Errorf("Unix() of %v", fw.Locals)
	}
	if sameUserSystem {
		for i, want := range []bool{true, true, false, true} {
			if got := fw.SameUserOn(fw.Locals[i]); got != want {
				t.Errorf("SameUserOn(%v) = %v, want %v", fw.Locals[i], got, want)
			}
		}
	}
	for route, want := range map[string]tunnel.Refusal{"pg": tunnel.RefusalPostgres, "redis": tunnel.RefusalRedis, "web": tunnel.RefusalReset, "other": tunnel.RefusalReset} {
		if got := fw.RefusalOf(route); got != want {
			t.Errorf("RefusalOf(%s) = %q, want %q", route, got, want)
		}
	}
	for _, args := range [][]string{{"--same-user=false"}, {"-same-user=0"}} {
		fw, err := ParseForward(append(append(tunnelArgs(f), "-L", "5432=pg"), args...), envMap(nil), nil)
		if err != nil || fw.SameUser {
			t.Errorf("%v: SameUser %v, %v; want off", args, fw != nil && fw.SameUser, err)
		}
	}
	fw, err = ParseForward(append(tunnelArgs(f), "-L", "5432=pg"), envMap(map[string]string{"TUNNEL_SAME_USER": "false", "TUNNEL_REFUSAL": "pg=postgres"}), nil)
	if err != nil || fw.SameUser || fw.RefusalOf("pg") != tunnel.RefusalPostgres {
		t.Errorf("from the environment: %+v, %v; want SameUser off and pg=postgres", fw, err)
	}
	for _, tt := range []struct{ arg, want string }{
		{"pg=mysql", `unknown style "mysql"`},
		{"pg", `no "="`},
		{"p g=redis", "invalid route name"},
		{"other=redis", `no -L listener carries route "other"`},
	} {
		_, err := ParseForward(append(tunnelArgs(f), "-L", "5432=pg", "--refusal", tt.arg), envMap(nil), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--refusal") {
			t.Errorf("--refusal %s: %v; want an error naming --refusal and containing %q", tt.arg, err, tt.want)
		}
	}
}

// TestLoginDir checks that forward and nc take the certificate, key and CA
// of tunnel login from --dir (or TUNNEL_DIR) when --cert and --key are not
// given, and refuse a --dir that holds none.
func TestLoginDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no login in the default directory
	dir := t.TempDir()
	st := enroll.Store{Dir: dir}
	for _, p := range []string{st.CertPath(), st.KeyPath(), st.CAPath()} {
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, tu *Tunnel) {
		t.Helper()
		if tu.Cert != st.CertPath() || tu.Key != st.KeyPath() || tu.CA != st.CAPath() {
			t.Errorf("%s: cert, key, ca = %q, %q, %q, want those of %s", what, tu.Cert, tu.Key, tu.CA, dir)
		}
		if got, ok := tu.LoginStore(); !ok || got.Dir != dir {
			t.Errorf("%s: LoginStore() = %v, %v, want %s", what, got, ok, dir)
		}
	}
	fw, err := ParseForward([]string{"--gateway", "gw.example.com:8443", "-L", "5432=pg", "--dir", dir}, envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	check("forward --dir", &fw.Tunnel)
	nc, err := ParseNC([]string{"--gateway", "gw.example.com:8443", "pg"}, envMap(map[string]string{"TUNNEL_DIR": dir}), nil)
	if err != nil {
		t.Fatal(err)
	}
	check("nc with TUNNEL_DIR", &nc.Tunnel)

	// --cert and --key win over --dir.
	f := newTestFiles(t)
	nc, err = ParseNC(append(tunnelArgs(f), "--dir", dir, "pg"), envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if nc.Cert != f.cert || nc.CA != f.ca {
		t.Errorf("nc --cert --dir: cert, ca = %q, %q, want %q, %q", nc.Cert, nc.CA, f.cert, f.ca)
	}
	if _, ok := nc.LoginStore(); ok {
		t.Error("nc --cert --dir: LoginStore() reports a login")
	}

	empty := t.TempDir()
	for _, args := range [][]string{
		{"forward", "--gateway", "gw.example.com:8443", "-L", "5432=pg", "--dir", empty},
		{"nc", "--gateway", "gw.example.com:8443", "--dir", empty, "pg"},
	} {
		var err error
		if args[0] == "forward" {
			_, err = ParseForward(args[1:], envMap(nil), nil)
		} else {
			_, err = ParseNC(args[1:], envMap(nil), nil)
		}
		if err == nil || !strings.Contains(err.Error(), "--dir") || !strings.Contains(err.Error(), "holds no certificate of tunnel login") {
			t.Errorf("%s with an empty --dir: err = %v, want one about --dir", args[0], err)
		}
	}
}
