package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/mux"
)

// testFiles creates the files that settings name. Their content does not
// matter: this package only checks that they can be read.
type testFiles struct {
	dir, cert, key, ca, crl, allow, policy string
}

func newTestFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	f := testFiles{dir: dir}
	for _, p := range []struct {
		dst  *string
		name string
	}{{&f.cert, "cert.pem"}, {&f.key, "key.pem"}, {&f.ca, "ca.pem"}, {&f.crl, "crl.pem"},
		{&f.allow, "allow.txt"}, {&f.policy, "policy.yaml"}} {
		*p.dst = filepath.Join(dir, p.name)
		if err := os.WriteFile(*p.dst, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// gatewayArgs is a valid minimal command line, as flag name -> values.
func gatewayArgs(f testFiles) map[string][]string {
	return map[string][]string{
		"cert":     {f.cert},
		"key":      {f.key},
		"ca":       {f.ca},
		"allow":    {"10.0.0.0/8"},
		"allow-id": {"any"},
		"route":    {"pg=db.internal:5432"},
	}
}

// argv turns flag name -> values into a command line, in a fixed order.
func argv(m map[string][]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		for _, v := range m[n] {
			out = append(out, "--"+n, v)
		}
	}
	return out
}

func TestParseGatewayDefaults(t *testing.T) {
	f := newTestFiles(t)
	g, err := ParseGateway(argv(gatewayArgs(f)), envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Gateway{
		Listen: ":8443", Cert: f.cert, Key: f.key, CA: f.ca,
		Routes:   []Route{{Name: "pg", Backend: "db.internal:5432"}},
		LogLevel: "info", LogFormat: "json",
		HandshakeTimeout: 10 * time.Second, IdleTimeout: 0, DialTimeout: 5 * time.Second, DrainTimeout: 30 * time.Second,
		WatchInterval: 5 * time.Second, MaxConns: 10000, MaxHandshakes: 256, MaxStreams: 1024,
		HelloTimeout: 5 * time.Second, MaxSessionMemory: 8 << 20, MaxPending: 1024, MaxPendingPerAddr: 64, MaxPendingPerPrefix: 256, PrefixV4: 24, PrefixV6: 64,
		AbuseHold: time.Second, AbuseHoldMax: time.Minute,
	}
	checkGateway(t, g, &want, []string{"10.0.0.0/8"}, []string{"any"})
}

func TestParseGatewayEnvOnly(t *testing.T) {
	f := newTestFiles(t)
	env := map[string]string{
		"GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_CERT": f.cert, "GATEWAY_KEY": f.key, "GATEWAY_CA": f.ca,
		"GATEWAY_CRL": f.crl, "GATEWAY_ALLOW": "10.0.0.0/8,!10.9.0.0/16,::1", "GATEWAY_ALLOW_FILE": f.allow,
		"GATEWAY_ROUTE":         "pg=db.internal:5432, echo=builtin:echo,sink=builtin:discard, v6=[2001:db8::1]:80",
		"GATEWAY_DEFAULT_ROUTE": "echo", "GATEWAY_ALLOW_ID": "uri:spiffe://corp/app/*,cn:alice",
		"GATEWAY_WATCH_INTERVAL": "0s", "GATEWAY_ADMIN": "127.0.0.1:9090", "GATEWAY_LOG_LEVEL": "debug",
		"GATEWAY_LOG_FORMAT": "console", "GATEWAY_HANDSHAKE_TIMEOUT": "3s", "GATEWAY_IDLE_TIMEOUT": "1m",
		"GATEWAY_DIAL_TIMEOUT": "2s", "GATEWAY_DRAIN_TIMEOUT": "0s", "GATEWAY_MAX_CONNS": "50",
		"GATEWAY_MAX_HANDSHAKES": "5", "GATEWAY_MAX_STREAMS": "7",
	}
	g, err := ParseGateway(nil, envMap(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Gateway{
		Listen: "127.0.0.1:0", Cert: f.cert, Key: f.key, CA: f.ca, CRL: f.crl, AllowFile: f.allow,
		Routes: []Route{{"pg", "db.internal:5432"}, {"echo", BuiltinEcho}, {"sink", BuiltinDiscard},
			{"v6", "[2001:db8::1]:80"}},
		DefaultRoute: "echo", Admin: "127.0.0.1:9090", LogLevel: "debug", LogFormat: "console",
		HandshakeTimeout: 3 * time.Second, IdleTimeout: time.Minute, DialTimeout: 2 * time.Second,
		MaxConns: 50, MaxHandshakes: 5, MaxStreams: 7,
		HelloTimeout: 5 * time.Second, MaxSessionMemory: 8 << 20, MaxPending: 1024, MaxPendingPerAddr: 64, MaxPendingPerPrefix: 256, PrefixV4: 24, PrefixV6: 64,
		AbuseHold: time.Second, AbuseHoldMax: time.Minute,
	}
	checkGateway(t, g, &want, []string{"10.0.0.0/8", "!10.9.0.0/16", "::1/128"},
		[]string{"uri:spiffe://corp/app/*", "cn:alice"})
}

func TestParseGatewayFlagsWinOverEnv(t *testing.T) {
	f := newTestFiles(t)
	env := map[string]string{
		"GATEWAY_LISTEN": "127.0.0.1:1", "GATEWAY_CERT": "/nonexistent/cert", "GATEWAY_KEY": f.key,
		"GATEWAY_CA": f.ca, "GATEWAY_ALLOW": "10.0.0.0/8", "GATEWAY_ALLOW_ID": "cn:env",
		"GATEWAY_ROUTE": "a=a.internal:1,b=b.internal:2", "GATEWAY_MAX_CONNS": "1", "GATEWAY_LOG_LEVEL": "nonsense",
	}
	args := []string{"--listen", "[::1]:0", "--cert", f.cert, "--allow", "192.168.0.0/16", "--allow-id", "cn:flag",
		"--allow-id", "ou:ops", "--route", "c=c.internal:3", "--max-conns", "2", "--log-level", "warn"}
	g, err := ParseGateway(args, envMap(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Gateway{
		Listen: "[::1]:0", Cert: f.cert, Key: f.key, CA: f.ca, Routes: []Route{{"c", "c.internal:3"}},
		LogLevel: "warn", LogFormat: "json", HandshakeTimeout: 10 * time.Second, DialTimeout: 5 * time.Second,
		DrainTimeout: 30 * time.Second, WatchInterval: 5 * time.Second, MaxConns: 2, MaxHandshakes: 256, MaxStreams: 1024,
		HelloTimeout: 5 * time.Second, MaxSessionMemory: 8 << 20, MaxPending: 1024, MaxPendingPerAddr: 64, MaxPendingPerPrefix: 256, PrefixV4: 24, PrefixV6: 64,
		AbuseHold: time.Second, AbuseHoldMax: time.Minute,
	}
	checkGateway(t, g, &want, []string{"192.168.0.0/16"}, []string{"cn:flag", "ou:ops"})
}

func checkGateway(t *testing.T, g, want *Gateway, allow, ids []string) {
	t.Helper()
	if got := strs(g.Allow); !slices.Equal(got, allow) {
		t.Errorf("Allow = %q, want %q", got, allow)
	}
	if got := strs(g.AllowIDs); !slices.Equal(got, ids) {
		t.Errorf("AllowIDs = %q, want %q", got, ids)
	}
	if !slices.Equal(g.Routes, want.Routes) {
		t.Errorf("Routes = %v, want %v", g.Routes, want.Routes)
	}
	gc, wc := *g, *want
	gc.Allow, gc.AllowIDs, gc.Routes = nil, nil, nil
	wc.Allow, wc.AllowIDs, wc.Routes = nil, nil, nil
	if !reflect.DeepEqual(gc, wc) {
		t.Errorf("Gateway =\n%+v\nwant\n%+v", gc, wc)
	}
}

func TestParseGatewayStandIns(t *testing.T) {
	f := newTestFiles(t)
	tests := []struct {
		name string
		edit func(m map[string][]string)
	}{
		{"allow-file instead of allow", func(m map[string][]string) {
			delete(m, "allow")
			m["allow-file"] = []string{f.allow}
		}},
		{"policy instead of allow, allow-id and route", func(m map[string][]string) {
			delete(m, "allow")
			delete(m, "allow-id")
			delete(m, "route")
			m["policy"] = []string{f.policy}
		}},
		{"policy with --allow for the gate", func(m map[string][]string) {
			delete(m, "allow-id")
			delete(m, "route")
			m["policy"] = []string{f.policy}
		}},
		{"policy with --allow-file for the gate", func(m map[string][]string) {
			delete(m, "allow")
			delete(m, "allow-id")
			delete(m, "route")
			m["policy"] = []string{f.policy}
			m["allow-file"] = []string{f.allow}
		}},
		{"no watching", func(m map[string][]string) { m["watch-interval"] = []string{"0"} }},
		{"admin and crl", func(m map[string][]string) {
			m["admin"] = []string{":9090"}
			m["crl"] = []string{f.crl}
		}},
		{"every address", func(m map[string][]string) { m["allow"] = []string{"0.0.0.0/0,::/0"} }},
		{"builtin backends and a default", func(m map[string][]string) {
			m["route"] = []string{"e=builtin:echo", "d=builtin:discard", "pg.gw.example.com=10.0.0.5:5432"}
			m["default-route"] = []string{"pg.gw.example.com"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := gatewayArgs(f)
			tt.edit(m)
			if _, err := ParseGateway(argv(m), envMap(nil), nil); err != nil {
				t.Errorf("ParseGateway(%q): %v", argv(m), err)
			}
		})
	}
}

func TestParseGatewayErrors(t *testing.T) {
	f := newTestFiles(t)
	tests := []struct {
		name string
		edit func(m map[string][]string)
		env  map[string]string
		want []string
	}{
		{"no cert", func(m map[string][]string) { delete(m, "cert") }, nil,
			[]string{"--cert (GATEWAY_CERT): required", `got ""`, "want a readable PEM file", "--cert /etc/portcullis/gateway.crt"}},
		{"no key", func(m map[string][]string) { delete(m, "key") }, nil,
			[]string{"--key (GATEWAY_KEY): required", `got ""`, "private key"}},
		{"no ca", func(m map[string][]string) { delete(m, "ca") }, nil,
			[]string{"--ca (GATEWAY_CA): required", `got ""`, "CA certificates"}},
		{"cert file missing", func(m map[string][]string) { m["cert"] = []string{f.dir + "/missing.crt"} }, nil,
			[]string{"--cert (GATEWAY_CERT): cannot read the file", "no such file", `got "` + f.dir + `/missing.crt"`}},
		{"key is a directory", func(m map[string][]string) { m["key"] = []string{f.dir} }, nil,
			[]string{"--key (GATEWAY_KEY): cannot read the file", "is a directory", `got "` + f.dir + `"`}},
		{"crl missing", func(m map[string][]string) { m["crl"] = []string{"/nonexistent/crl.pem"} }, nil,
			[]string{"--crl (GATEWAY_CRL): cannot read the file", `got "/nonexistent/crl.pem"`, "want a readable CRL file"}},
		{"allow-file missing", func(m map[string][]string) { m["allow-file"] = []string{"/nonexistent/allow"} }, nil,
			[]string{"--allow-file (GATEWAY_ALLOW_FILE): cannot read the file", `got "/nonexistent/allow"`}},
		{"policy missing", func(m map[string][]string) { m["policy"] = []string{"/nonexistent/p.yaml"} }, nil,
			[]string{"--policy (GATEWAY_POLICY): cannot read the file", `got "/nonexistent/p.yaml"`}},
		{"no allow-list", func(m map[string][]string) { delete(m, "allow") }, nil,
			[]string{"--allow (GATEWAY_ALLOW): no network allow-list", `got ""`, "want --allow RULES, e.g. --allow 10.0.0.0/8",
				"--allow-file FILE (GATEWAY_ALLOW_FILE)", "--policy FILE (GATEWAY_POLICY)"}},
		{"empty allow-list", func(m map[string][]string) { m["allow"] = []string{" "} }, nil,
			[]string{"--allow (GATEWAY_ALLOW): no network allow-list"}},
		{"no identity rule", func(m map[string][]string) { delete(m, "allow-id") }, nil,
			[]string{"--allow-id (GATEWAY_ALLOW_ID): no identity rule", `got ""`, "want --allow-id PATTERN, e.g. --allow-id",
				"--allow-id any", "--policy FILE (GATEWAY_POLICY)"}},
		{"no route", func(m map[string][]string) { delete(m, "route") }, nil,
			[]string{"--route (GATEWAY_ROUTE): no route", `got ""`, "e.g. --route pg=db.internal:5432", "--policy FILE (GATEWAY_POLICY)"}},
		{"route without =", func(m map[string][]string) { m["route"] = []string{"pg"} }, nil,
			[]string{"--route (GATEWAY_ROUTE): invalid value", `no "=" between NAME and the backend`, `got "pg" from --route`,
				"want NAME=HOST:PORT, NAME=unix:PATH, NAME=builtin:echo or NAME=builtin:discard"}},
		{"route without port", func(m map[string][]string) { m["route"] = []string{"pg=db"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", `backend "db" of route "pg": no port`, `got "pg=db"`}},
		{"route port 0", func(m map[string][]string) { m["route"] = []string{"pg=db:0"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", `port "0" is not a number from 1 to 65535`, `got "pg=db:0"`}},
		{"route port too big", func(m map[string][]string) { m["route"] = []string{"pg=db:65536"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", `port "65536" is not a number from 1 to 65535`}},
		{"route named port", func(m map[string][]string) { m["route"] = []string{"pg=db:postgres"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", `port "postgres" is not a number`}},
		{"unknown builtin", func(m map[string][]string) { m["route"] = []string{"x=builtin:cat"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", `backend "builtin:cat" of route "x": unknown builtin; want builtin:echo or builtin:discard`}},
		{"bad route name", func(m map[string][]string) { m["route"] = []string{"my db=db:5432"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", "route name: invalid route name", `got "my db=db:5432"`}},
		{"empty route name", func(m map[string][]string) { m["route"] = []string{"=db:5432"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", "route is empty"}},
		{"IPv6 backend without brackets", func(m map[string][]string) { m["route"] = []string{"v6=::1:5432"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", "an IPv6 address goes in brackets"}},
		{"backend without host", func(m map[string][]string) { m["route"] = []string{"pg=:5432"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", "no host before the port"}},
		{"backend host with a space", func(m map[string][]string) { m["route"] = []string{"pg=db host:5432"} }, nil,
			[]string{"--route (GATEWAY_ROUTE)", `host name "db host" holds ' '`}},
		{"bad route in env", func(m map[string][]string) { delete(m, "route") },
			map[string]string{"GATEWAY_ROUTE": "pg=db:5432,redis"},
			[]string{"--route (GATEWAY_ROUTE): invalid value", `got "pg=db:5432,redis" from $GATEWAY_ROUTE`}},
		{"duplicate route", func(m map[string][]string) { m["route"] = []string{"pg=a:1", "pg=b:2"} }, nil,
			[]string{"--route (GATEWAY_ROUTE): route \"pg\" is defined twice (first at --route)", `got "pg=b:2"`, "want one --route per NAME"}},
		{"default route unknown", func(m map[string][]string) {
			m["route"] = []string{"pg=a:1", "redis=b:2"}
			m["default-route"] = []string{"nope"}
		}, nil,
			[]string{"--default-route (GATEWAY_DEFAULT_ROUTE): default route \"nope\" names no route", `got "nope"`, `want the NAME of a --route: "pg" or "redis"`}},
		{"default route invalid", func(m map[string][]string) { m["default-route"] = []string{"no/pe"} }, nil,
			[]string{"--default-route (GATEWAY_DEFAULT_ROUTE): invalid route name", `got "no/pe"`}},
		{"listen without port", func(m map[string][]string) { m["listen"] = []string{"8443"} }, nil,
			[]string{"--listen (GATEWAY_LISTEN): not a listen address", "no port", `got "8443"`, "want HOST:PORT with a port from 0 to 65535"}},
		{"listen port too big", func(m map[string][]string) { m["listen"] = []string{"localhost:99999"} }, nil,
			[]string{"--listen (GATEWAY_LISTEN)", `port "99999" is not a number from 0 to 65535`, `got "localhost:99999"`}},
		{"listen IPv6 without brackets", func(m map[string][]string) { m["listen"] = []string{"::1:8443"} }, nil,
			[]string{"--listen (GATEWAY_LISTEN)", "brackets", `got "::1:8443"`}},
		{"listen IPv4 in brackets", func(m map[string][]string) { m["listen"] = []string{"[127.0.0.1]:8443"} }, nil,
			[]string{"--listen (GATEWAY_LISTEN)", "brackets are for IPv6 addresses only"}},
		{"listen bad IPv4", func(m map[string][]string) { m["listen"] = []string{"10.0.0.300:8443"} }, nil,
			[]string{"--listen (GATEWAY_LISTEN)", `host "10.0.0.300" is not a valid IPv4 address`}},
		{"listen from env", nil, map[string]string{"GATEWAY_LISTEN": "nope"},
			[]string{"--listen (GATEWAY_LISTEN): not a listen address", `got "nope"`}},
		{"admin without port", func(m map[string][]string) { m["admin"] = []string{"localhost"} }, nil,
			[]string{"--admin (GATEWAY_ADMIN): not a listen address", `got "localhost"`, "or empty to disable"}},
		{"log level", func(m map[string][]string) { m["log-level"] = []string{"verbose"} }, nil,
			[]string{"--log-level (GATEWAY_LOG_LEVEL): unknown value", `got "verbose"`, `want "debug", "info", "warn" or "error"`}},
		{"log format", nil, map[string]string{"GATEWAY_LOG_FORMAT": "text"},
			[]string{"--log-format (GATEWAY_LOG_FORMAT): unknown value", `got "text"`, `want "json" or "console"`}},
		{"handshake timeout 0", func(m map[string][]string) { m["handshake-timeout"] = []string{"0"} }, nil,
			[]string{"--handshake-timeout (GATEWAY_HANDSHAKE_TIMEOUT): must be greater than 0", `got "0s"`, "e.g. 10s"}},
		{"handshake timeout not a duration", func(m map[string][]string) { m["handshake-timeout"] = []string{"10"} }, nil,
			[]string{"--handshake-timeout (GATEWAY_HANDSHAKE_TIMEOUT): not a duration", `got "10" from --handshake-timeout`, "want a duration such as 10s"}},
		{"dial timeout negative", func(m map[string][]string) { m["dial-timeout"] = []string{"-1s"} }, nil,
			[]string{"--dial-timeout (GATEWAY_DIAL_TIMEOUT): must be greater than 0", `got "-1s"`, "e.g. 5s"}},
		{"idle timeout negative", func(m map[string][]string) { m["idle-timeout"] = []string{"-1m"} }, nil,
			[]string{"--idle-timeout (GATEWAY_IDLE_TIMEOUT): must not be negative", `got "-1m0s"`, "(0 means never)"}},
		{"watch interval negative", func(m map[string][]string) { m["watch-interval"] = []string{"-1s"} }, nil,
			[]string{"--watch-interval (GATEWAY_WATCH_INTERVAL): must not be negative", `got "-1s"`,
				"(0 disables polling; SIGHUP still reloads)"}},
		{"watch interval not a duration", nil, map[string]string{"GATEWAY_WATCH_INTERVAL": "5"},
			[]string{"--watch-interval (GATEWAY_WATCH_INTERVAL): not a duration", `got "5" from $GATEWAY_WATCH_INTERVAL`}},
		{"policy with --route", func(m map[string][]string) {
			delete(m, "allow-id")
			m["policy"] = []string{f.policy}
		}, nil,
			[]string{"--route (GATEWAY_ROUTE): given together with --policy (GATEWAY_POLICY)", `routes come from its "routes:" only`,
				`got "pg=db.internal:5432"`, "want either --route NAME=HOST:PORT (GATEWAY_ROUTE) or --policy FILE (GATEWAY_POLICY), not both"}},
		{"policy with --allow-id", func(m map[string][]string) {
			delete(m, "route")
			m["policy"] = []string{f.policy}
		}, nil,
			[]string{"--allow-id (GATEWAY_ALLOW_ID): given together with --policy (GATEWAY_POLICY)", `from its "identities:" only`,
				`got "any"`, "want either --allow-id PATTERN (GATEWAY_ALLOW_ID) or --policy FILE (GATEWAY_POLICY), not both"}},
		{"policy with --default-route", func(m map[string][]string) {
			delete(m, "route")
			delete(m, "allow-id")
			m["policy"] = []string{f.policy}
			m["default-route"] = []string{"pg"}
		}, nil,
			[]string{"--default-route (GATEWAY_DEFAULT_ROUTE): given together with --policy (GATEWAY_POLICY)",
				`from its "default_route:" only`, `got "pg"`, "not both"}},
		{"drain timeout negative", nil, map[string]string{"GATEWAY_DRAIN_TIMEOUT": "-5s"},
			[]string{"--drain-timeout (GATEWAY_DRAIN_TIMEOUT): must not be negative", `got "-5s"`, "(0 closes open streams at once)"}},
		{"max conns 0", func(m map[string][]string) { m["max-conns"] = []string{"0"} }, nil,
			[]string{"--max-conns (GATEWAY_MAX_CONNS): must be at least 1", `got "0"`, "e.g. 10000"}},
		{"max handshakes negative", func(m map[string][]string) { m["max-handshakes"] = []string{"-1"} }, nil,
			[]string{"--max-handshakes (GATEWAY_MAX_HANDSHAKES): must be at least 1", `got "-1"`, "e.g. 256"}},
		{"max streams 0", nil, map[string]string{"GATEWAY_MAX_STREAMS": "0"},
			[]string{"--max-streams (GATEWAY_MAX_STREAMS): must be at least 1", `got "0"`, "e.g. 1024"}},
		{"max conns not a number", nil, map[string]string{"GATEWAY_MAX_CONNS": "10k"},
			[]string{"--max-conns (GATEWAY_MAX_CONNS): not a whole number", `got "10k" from $GATEWAY_MAX_CONNS`}},
		{"bad allow", func(m map[string][]string) { m["allow"] = []string{"10.0.0.0/8,10.1.2.3/8"} }, nil,
			[]string{"--allow (GATEWAY_ALLOW): invalid network rules", "not a canonical prefix", `got "10.0.0.0/8,10.1.2.3/8" from --allow`}},
		{"conflicting allow rules", func(m map[string][]string) { m["allow"] = []string{"10.0.0.0/8,::1", "!10.0.0.0/8"} }, nil,
			[]string{"--allow (GATEWAY_ALLOW): the rules do not form a valid allow-list", "conflicting rules", "10.0.0.0/8",
				`got "10.0.0.0/8,::1/128,!10.0.0.0/8"`}},
		{"bad allow-id", func(m map[string][]string) { m["allow-id"] = []string{"alice"} }, nil,
			[]string{"--allow-id (GATEWAY_ALLOW_ID): invalid identity pattern", `got "alice" from --allow-id`}},
		{"bad allow-id in env", func(m map[string][]string) { delete(m, "allow-id") },
			map[string]string{"GATEWAY_ALLOW_ID": "cn:a, spiffe://x"},
			[]string{"--allow-id (GATEWAY_ALLOW_ID): invalid identity pattern", `got "cn:a,spiffe://x" from $GATEWAY_ALLOW_ID`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := gatewayArgs(f)
			if tt.edit != nil {
				tt.edit(m)
			}
			g, err := ParseGateway(argv(m), envMap(tt.env), nil)
			if err == nil {
				t.Fatalf("no error; got %+v", g)
			}
			if g != nil {
				t.Errorf("settings returned with an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var se *settings.Error
			if !errors.As(err, &se) {
				t.Errorf("error is not a *settings.Error: %v", err)
			}
			testnet.InOrder(t, err.Error(), tt.want)
		})
	}
}

func TestParseGatewayPositional(t *testing.T) {
	f := newTestFiles(t)
	_, err := ParseGateway(append(argv(gatewayArgs(f)), "run"), envMap(nil), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `unexpected argument "run"`) {
		t.Errorf("err = %v, want an unexpected argument error", err)
	}
}

func TestGatewayValidateReportsEverything(t *testing.T) {
	err := (&Gateway{}).Validate()
	if err == nil {
		t.Fatal("the zero Gateway is valid")
	}
	for _, want := range []string{"--listen (GATEWAY_LISTEN)", "--cert (GATEWAY_CERT)", "--key (GATEWAY_KEY)",
		"--ca (GATEWAY_CA)", "--allow (GATEWAY_ALLOW)", "--allow-id (GATEWAY_ALLOW_ID)", "--route (GATEWAY_ROUTE)",
		"--log-level (GATEWAY_LOG_LEVEL)", "--log-format (GATEWAY_LOG_FORMAT)", "--handshake-timeout",
		"--dial-timeout", "--max-conns", "--max-handshakes", "--max-streams", "--hello-timeout", "--max-pending ",
		"--max-pending-per-addr", "--max-pending-per-prefix", "--prefix-v4", "--prefix-v6", "--max-session-memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 21 {
		t.Errorf("%d problems reported, want 21:\n%v", n, err)
	}
}

func TestGatewayValidateBuiltInCode(t *testing.T) {
	f := newTestFiles(t)
	base := func() *Gateway {
		g, err := ParseGateway(argv(gatewayArgs(f)), envMap(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("parsed settings do not validate: %v", err)
	}
	g := base()
	g.Routes = append(g.Routes, Route{Name: "bad name", Backend: "x:1"})
	if err := g.Validate(); !errors.Is(err, mux.ErrRoute) || !strings.Contains(err.Error(), `got "bad name=x:1"`) {
		t.Errorf("bad route built in code: %v", err)
	}
	g = base()
	g.AllowIDs = append(g.AllowIDs, conn.Pattern{})
	if err := g.Validate(); err == nil || !strings.Contains(err.Error(), "empty identity pattern") {
		t.Errorf("zero pattern built in code: %v", err)
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		in      string
		want    Route
		builtin bool
		err     string
	}{
		{"pg=db.internal:5432", Route{"pg", "db.internal:5432"}, false, ""},
		{"  pg=10.0.0.5:5432 ", Route{"pg", "10.0.0.5:5432"}, false, ""},
		{"v6=[2001:db8::1]:443", Route{"v6", "[2001:db8::1]:443"}, false, ""},
		{"pg.gw.example.com=db:5432", Route{"pg.gw.example.com", "db:5432"}, false, ""},
		{"svc:1=h:1", Route{"svc:1", "h:1"}, false, ""},
		{"e=builtin:echo", Route{"e", BuiltinEcho}, true, ""},
		{"d=builtin:discard", Route{"d", BuiltinDiscard}, true, ""},
		{"pg=unix:/var/run/postgresql/.s.PGSQL.5432", Route{"pg", "unix:/var/run/postgresql/.s.PGSQL.5432"}, false, ""},
		{"pg=unix:pg.sock", Route{}, false, "not absolute"},
		{"pg=unix:", Route{}, false, "not absolute"},
		{"x=y=z:1", Route{}, false, `host name "y=z"`},
		{"pg", Route{}, false, `no "="`},
		{"", Route{}, false, `no "="`},
		{"pg=", Route{}, false, `backend "" of route "pg"`},
		{"pg=db:", Route{}, false, "no port after the colon"},
		{"pg=db:-1", Route{}, false, "not a number"},
		{"pg=[db]:1", Route{}, false, "brackets are for IPv6 addresses only"},
		{"pg=[::1%eth 0]:1", Route{}, false, "IPv6 zone"},
		{"pg=1.2.3:80", Route{}, false, "not a valid IPv4 address"},
		{"pg=a..b:80", Route{}, false, "empty or too long"},
		{"pg=builtin:", Route{}, false, "unknown builtin"},
		{strings.Repeat("r", 256) + "=h:1", Route{}, false, "256 bytes long"},
	}
	for _, tt := range tests {
		r, err := ParseRoute(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseRoute(%q) = %v, %v; want an ErrInvalid error containing %q", tt.in, r, err, tt.err)
			}
			continue
		}
		if err != nil || r != tt.want || r.IsBuiltin() != tt.builtin {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v (builtin %v)", tt.in, r, err, tt.want, tt.builtin)
			continue
		}
		back, err := ParseRoute(r.String())
		if err != nil || back != r {
			t.Errorf("ParseRoute(%q.String()) = %+v, %v", r, back, err)
		}
		text, _ := r.MarshalText()
		var u Route
		if err := u.UnmarshalText(text); err != nil || u != r {
			t.Errorf("UnmarshalText(MarshalText(%+v)) = %+v, %v", r, u, err)
		}
	}
	var u Route
	if err := u.UnmarshalText([]byte("bad")); err == nil || u != (Route{}) {
		t.Errorf("UnmarshalText(bad) = %v and changed the route to %+v", err, u)
	}
}

// A bad --allow is reported once, on --allow: the policy check that runs
// next judges where the gate comes from, not its rules again.
func TestBadAllowReportedOnce(t *testing.T) {
	f := newTestFiles(t)
	m := gatewayArgs(f)
	m["allow"] = []string{"10.0.0.0/8,!10.0.0.0/8"}
	_, err := ParseGateway(argv(m), envMap(nil), nil)
	if err == nil {
		t.Fatal("conflicting --allow rules were accepted")
	}
	if n := strings.Count(err.Error(), "conflicting rules"); n != 1 || strings.Contains(err.Error(), "--route (GATEWAY_ROUTE)") {
		t.Errorf("reported %d times, or on another flag:\n%v", n, err)
	}
}

// TestGatewayLimitErrors: a bad identity limit or abuse hold is reported
// once, under its own flag; --drain-timeout 0 and --abuse-hold 0 reach the
// server as "none", not as its defaults.
func TestGatewayLimitErrors(t *testing.T) {
	f := newTestFiles(t)
	for _, tc := range []struct {
		extra map[string]string
		want  string
	}{
		{map[string]string{"max-sessions-per-identity": "-1"}, "--max-sessions-per-identity (GATEWAY_MAX_SESSIONS_PER_IDENTITY): must be from 0"},
		{map[string]string{"abuse-hold": "5m", "abuse-hold-max": "1m"}, "--abuse-hold-max (GATEWAY_ABUSE_HOLD_MAX): must be at least --abuse-hold (5m0s)"},
	} {
		m := gatewayArgs(f)
		for k, v := range tc.extra {
			m[k] = []string{v}
		}
		_, err := ParseGateway(argv(m), envMap(nil), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.extra, err, tc.want)
			continue
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
			t.Errorf("%v: %d problems reported, want 1:\n%v", tc.extra, n, err)
		}
	}
	m := gatewayArgs(f)
	m["drain-timeout"], m["abuse-hold"] = []string{"0s"}, []string{"0s"}
	g, err := ParseGateway(argv(m), envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc := g.ServerConfig(nil); sc.LifetimeDrain >= 0 || sc.AbuseHold >= 0 {
		t.Errorf("--drain-timeout 0 --abuse-hold 0 gave LifetimeDrain %v, AbuseHold %v; want negative (none)", sc.LifetimeDrain, sc.AbuseHold)
	}
}
