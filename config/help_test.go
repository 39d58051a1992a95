package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/internal/testnet"
)

var update = flag.Bool("update", false, "rewrite the golden help texts in testdata/help")

// helpOf returns the --help text of a command.
func helpOf(t *testing.T, parse func([]string, func(string) (string, bool), *bytes.Buffer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := parse([]string{"--help"}, envMap(nil), &buf); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: err = %v, want flag.ErrHelp", err)
	}
	return buf.String()
}

var commands = []struct {
	name  string
	parse func([]string, func(string) (string, bool), *bytes.Buffer) error
	// entries lists, in order, each flag with its placeholder, then what
	// follows on its entry: default and variable.
	entries [][2]string
	extra   []string
}{
	{
		name: "gateway-run",
		parse: func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParseGateway(a, l, w)
			return err
		},
		entries: [][2]string{
			{"--listen ADDR", "(default :8443) [$GATEWAY_LISTEN]"},
			{"--cert FILE", "[$GATEWAY_CERT]"},
			{"--key FILE", "[$GATEWAY_KEY]"},
			{"--key-pass-file FILE", "[$GATEWAY_KEY_PASS_FILE]"},
			{"--ca FILE", "[$GATEWAY_CA]"},
			{"--crl FILE", "[$GATEWAY_CRL]"},
			{"--allow RULES", "(repeatable) [$GATEWAY_ALLOW, comma separated]"},
			{"--allow-file FILE", "[$GATEWAY_ALLOW_FILE]"},
			{"--route NAME=HOST:PORT", "(repeatable) [$GATEWAY_ROUTE, comma separated]"},
			{"--default-route NAME", "[$GATEWAY_DEFAULT_ROUTE]"},
			{"--allow-id PATTERN", "(repeatable) [$GATEWAY_ALLOW_ID, comma separated]"},
			{"--policy FILE", "[$GATEWAY_POLICY]"},
			{"--admin ADDR", "[$GATEWAY_ADMIN]"},
			{"--ready-despite-reload-failure", "[$GATEWAY_READY_DESPITE_RELOAD_FAILURE]"},
			{"--log-level LEVEL", "(default info) [$GATEWAY_LOG_LEVEL]"},
			{"--log-format FORMAT", "(default json) [$GATEWAY_LOG_FORMAT]"},
			{"--handshake-timeout DURATION", "(default 10s) [$GATEWAY_HANDSHAKE_TIMEOUT]"},
			{"--idle-timeout DURATION", "(default 0s) [$GATEWAY_IDLE_TIMEOUT]"},
			{"--dial-timeout DURATION", "(default 5s) [$GATEWAY_DIAL_TIMEOUT]"},
			{"--drain-timeout DURATION", "(default 30s) [$GATEWAY_DRAIN_TIMEOUT]"},
			{"--watch-interval DURATION", "(default 5s) [$GATEWAY_WATCH_INTERVAL]"},
			{"--max-conns N", "(default 10000) [$GATEWAY_MAX_CONNS]"},
			{"--max-handshakes N", "(default 256) [$GATEWAY_MAX_HANDSHAKES]"},
			{"--max-streams N", "(default 1024) [$GATEWAY_MAX_STREAMS]"},
			{"--hello-timeout DURATION", "(default 5s) [$GATEWAY_HELLO_TIMEOUT]"},
			{"--max-pending N", "(default 1024) [$GATEWAY_MAX_PENDING]"},
			{"--max-pending-per-addr N", "(default 64) [$GATEWAY_MAX_PENDING_PER_ADDR]"},
			{"--max-pending-per-prefix N", "(default 256) [$GATEWAY_MAX_PENDING_PER_PREFIX]"},
			{"--prefix-v4 N", "(default 24) [$GATEWAY_PREFIX_V4]"},
			{"--prefix-v6 N", "(default 64) [$GATEWAY_PREFIX_V6]"},
			{"--max-session-memory BYTES", "(default 8388608) [$GATEWAY_MAX_SESSION_MEMORY]"},
			{"--conn-rate-per-addr RATE", "(default off) [$GATEWAY_CONN_RATE_PER_ADDR]"},
			{"--conn-rate-per-prefix RATE", "(default off) [$GATEWAY_CONN_RATE_PER_PREFIX]"},
			{"--handshake-rate-per-addr RATE", "(default off) [$GATEWAY_HANDSHAKE_RATE_PER_ADDR]"},
			{"--handshake-rate-per-prefix RATE", "(default off) [$GATEWAY_HANDSHAKE_RATE_PER_PREFIX]"},
			{"--abuse-hold DURATION", "(default 1s) [$GATEWAY_ABUSE_HOLD]"},
			{"--abuse-hold-max DURATION", "(default 1m) [$GATEWAY_ABUSE_HOLD_MAX]"},
			{"--max-sessions-per-identity N", "(default 0) [$GATEWAY_MAX_SESSIONS_PER_IDENTITY]"},
			{"--max-streams-per-identity N", "(default 0) [$GATEWAY_MAX_STREAMS_PER_IDENTITY]"},
			{"--stream-rate-per-identity RATE", "(default off) [$GATEWAY_STREAM_RATE_PER_IDENTITY]"},
			{"--max-conn-lifetime DURATION", "(default 0s) [$GATEWAY_MAX_CONN_LIFETIME]"},
			{"--route-proxy NAME[=MODE]", "[$GATEWAY_ROUTE_PROXY, comma separated]"},
			{"--trusted-proxy RULES", "(repeatable) [$GATEWAY_TRUSTED_PROXY, comma separated]"},
			{"--no-landlock", "[$GATEWAY_NO_LANDLOCK]"},
			{"--strict-perms", "[$GATEWAY_STRICT_PERMS]"},
			{"-h, --help", "show this help"},
		},
		extra: []string{"Usage: gateway run [flags]", "Examples:", "gateway run --cert", "GATEWAY_CERT=", "GATEWAY_ and the flag name"},
	},
	{
		name: "tunnel-forward",
		parse: func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParseForward(a, l, w)
			return err
		},
		entries: append(tunnelEntries(), [][2]string{
			{"-L, --local [BIND:]PORT=ROUTE", "(repeatable) [$TUNNEL_LOCAL, comma separated]"},
			{"--same-user", "(default true) [$TUNNEL_SAME_USER]"},
			{"--refusal ROUTE=STYLE", "(repeatable) [$TUNNEL_REFUSAL, comma separated]"},
			{"--lazy", "[$TUNNEL_LAZY]"},
			{"--renew", "(default true) [$TUNNEL_RENEW]"},
			{"--admin ADDR", "[$TUNNEL_ADMIN]"},
			{"--dir DIR", "[$TUNNEL_DIR]"},
			{"-h, --help", "show this help"},
		}...),
		extra: []string{"Usage: tunnel forward [flags] -L [BIND:]PORT=ROUTE", "Examples:", "-L 5432=pg", "TUNNEL_LOCAL=", "TUNNEL_ and the flag name"},
	},
	{
		name: "enroll-serve",
		parse: func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParseEnrollServe(a, l, w)
			return err
		},
		entries: [][2]string{
			{"--dir DIR", "[$GATEWAY_DIR]"},
			{"--listen ADDR", "(default 127.0.0.1:8444) [$GATEWAY_LISTEN]"},
			{"--cert FILE", "[$GATEWAY_CERT]"},
			{"--key FILE", "[$GATEWAY_KEY]"},
			{"--users-keyring FILE", "[$GATEWAY_USERS_KEYRING]"},
			{"--admin-keyring FILE", "[$GATEWAY_ADMIN_KEYRING]"},
			{"--users-map FILE", "[$GATEWAY_USERS_MAP]"},
			{"--org DOMAIN", "[$GATEWAY_ORG]"},
			{"--ttl DURATION", "(default 18h) [$GATEWAY_TTL]"},
			{"--max-ttl DURATION", "(default 24h) [$GATEWAY_MAX_TTL]"},
			{"--log-level LEVEL", "(default info) [$GATEWAY_LOG_LEVEL]"},
			{"--log-format FORMAT", "(default json) [$GATEWAY_LOG_FORMAT]"},
			{"-h, --help", "show this help"},
		},
		extra: []string{"Usage: gateway enroll serve", "Examples:", "gpg --export", "POST /v1/certificates"},
	},
	{
		name: "tunnel-login",
		parse: func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParseLogin(a, l, w)
			return err
		},
		entries: [][2]string{
			{"--enroll URL", "[$TUNNEL_ENROLL]"},
			{"--ca FILE", "[$TUNNEL_CA]"},
			{"--gpg-key ID", "[$TUNNEL_GPG_KEY]"},
			{"--pgp-key FILE", "[$TUNNEL_PGP_KEY]"},
			{"--gpg PROGRAM", "(default gpg) [$TUNNEL_GPG]"},
			{"--ttl DURATION", "[$TUNNEL_TTL]"},
			{"--dir DIR", "[$TUNNEL_DIR]"},
			{"-h, --help", "show this help"},
		},
		extra: []string{"Usage: tunnel login", "Examples:", "--gpg-key alice@example.com"},
	},
	{
		name: "tunnel-nc",
		parse: func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParseNC(a, l, w)
			return err
		},
		entries: append(tunnelEntries(), [][2]string{
			{"--dir DIR", "[$TUNNEL_DIR]"},
			{"-h, --help", "show this help"},
		}...),
		extra: []string{"Usage: tunnel nc [flags] ROUTE", "Examples:", "ProxyCommand", "TUNNEL_ and the flag name"},
	},
}

func tunnelEntries() [][2]string {
	return [][2]string{
		{"--gateway HOST:PORT", "(repeatable) [$TUNNEL_GATEWAY, comma separated]"},
		{"--cert FILE", "[$TUNNEL_CERT]"},
		{"--key FILE", "[$TUNNEL_KEY]"},
		{"--key-pass-file FILE", "[$TUNNEL_KEY_PASS_FILE]"},
		{"--ca FILE", "[$TUNNEL_CA]"},
		{"--server-name NAME", "[$TUNNEL_SERVER_NAME]"},
		{"--direct", "[$TUNNEL_DIRECT]"},
		{"--connect-timeout DURATION", "(default 10s) [$TUNNEL_CONNECT_TIMEOUT]"},
		{"--pin sha256:HEX", "(repeatable) [$TUNNEL_PIN, comma separated]"},
		{"--gateway-allow RULES", "(repeatable) [$TUNNEL_GATEWAY_ALLOW, comma separated]"},
		{"--log-level LEVEL", "(default info) [$TUNNEL_LOG_LEVEL]"},
		{"--log-format FORMAT", "(default console) [$TUNNEL_LOG_FORMAT]"},
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			help := helpOf(t, c.parse)
			// Unwrap entries so that a default or variable pushed to the
			// next line still follows its flag.
			flat := strings.Join(strings.Fields(help), " ")
			var want []string
			for _, e := range c.entries {
				want = append(want, " "+e[0]+" ", e[1])
			}
			testnet.InOrder(t, flat, want)
			for _, x := range c.extra {
				if !strings.Contains(help, x) {
					t.Errorf("help lacks %q:\n%s", x, help)
				}
			}
			if n := strings.Count(flat, "[$"); n != len(c.entries)-1 {
				t.Errorf("help lists %d variables, want %d", n, len(c.entries)-1)
			}
			for i, line := range strings.Split(help, "\n") {
				if len(line) > settings.HelpWidth {
					t.Errorf("line %d is %d columns wide (> %d): %q", i+1, len(line), settings.HelpWidth, line)
				}
			}
		})
	}
}

// TestHelpGolden compares the help texts with testdata/help/*.txt; run
// with -update to rewrite them after a deliberate change.
func TestHelpGolden(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			help := helpOf(t, c.parse)
			path := filepath.Join("testdata", "help", c.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(help), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestHelpGolden -update to create it)", err)
			}
			if help != string(want) {
				t.Errorf("help of %s differs from %s (run with -update after a deliberate change):\n%s", c.name, path, help)
			}
		})
	}
}
