package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/internal/testnet"
)

const testPin = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// colonHex writes h as upper-case byte pairs separated by colons, as
// openssl prints fingerprints.
func colonHex(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, strings.ToUpper(h[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func TestParsePin(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"sha256:" + testPin, testPin, ""},
		{"SHA256:" + strings.ToUpper(testPin), testPin, ""},
		{testPin, testPin, ""},
		{"  sha256:" + colonHex(testPin) + " ", testPin, ""},
		{colonHex(testPin), testPin, ""},
		{"abc:" + testPin[3:], "abc" + testPin[3:], ""}, // hex digits before the first colon, not a hash name
		{"sha1:" + testPin[:40], "", `unknown hash "sha1"; only sha256`},
		{"md5:" + testPin[:32], "", `unknown hash "md5"`},
		{"sha256:" + testPin[:62], "", "has 62 hex digits; want 64"},
		{"sha256:" + testPin + "00", "", "has 66 hex digits; want 64"},
		{"sha256:", "", "has 0 hex digits"},
		{"", "", "has 0 hex digits"},
		{"sha256:" + testPin[:63] + "g", "", `holds 'g'; want hex digits 0-9 and a-f`},
		{"sha256: " + testPin, "", `holds ' '`},
	}
	for _, tt := range tests {
		got, err := ParsePin(tt.in)
		if tt.err != "" {
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePin(%q) = %q, %v; want an ErrInvalid error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTunnelPinsAndGatewayAllow(t *testing.T) {
	f := newTestFiles(t)
	other := strings.Repeat("ab", 32)
	fw, err := ParseForward(append(tunnelArgs(f), "-L", "1=a", "--pin", "SHA256:"+colonHex(testPin), "--pin", other,
		"--gateway-allow", "10.0.0.0/8", "--gateway-allow", "!10.9.0.0/16,2001:db8::/32"), envMap(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fw.Pins, []string{testPin, other}) {
		t.Errorf("Pins = %q, want them normalised", fw.Pins)
	}
	if got := strs(fw.GatewayAllow); !slices.Equal(got, []string{"10.0.0.0/8", "!10.9.0.0/16", "2001:db8::/32"}) {
		t.Errorf("GatewayAllow = %q", got)
	}

	// The environment, comma separated; nc normalises too.
	n, err := ParseNC(append(tunnelArgs(f), "pg"), envMap(map[string]string{
		"TUNNEL_PIN": "sha256:" + strings.ToUpper(testPin) + ", " + colonHex(other), "TUNNEL_GATEWAY_ALLOW": "192.0.2.0/24",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.Pins, []string{testPin, other}) || len(n.GatewayAllow) != 1 {
		t.Errorf("Pins = %q, GatewayAllow = %v", n.Pins, n.GatewayAllow)
	}

	// None given: no pinning, any gateway address.
	fw, err = ParseForward(append(tunnelArgs(f), "-L", "1=a"), envMap(nil), nil)
	if err != nil || fw.Pins != nil || fw.GatewayAllow != nil {
		t.Errorf("defaults: %+v, %v", fw, err)
	}
}

func TestParseTunnelPinAndGatewayAllowErrors(t *testing.T) {
	f := newTestFiles(t)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"short pin", []string{"--pin", "sha256:abcd"}, nil,
			[]string{"--pin (TUNNEL_PIN): not a SHA-256 fingerprint", `pin "sha256:abcd" has 4 hex digits; want 64`,
				`got "sha256:abcd"`, "want sha256: and the 64 hex digits"}},
		{"pin of another hash", nil, map[string]string{"TUNNEL_PIN": testPin + ",sha1:" + testPin[:40]},
			[]string{"--pin (TUNNEL_PIN): not a SHA-256 fingerprint", `unknown hash "sha1"`}},
		{"bad gateway-allow", []string{"--gateway-allow", "10.0.0.0/8,10.1.2.3/8"}, nil,
			[]string{"--gateway-allow (TUNNEL_GATEWAY_ALLOW): invalid network rules", "not a canonical prefix",
				`got "10.0.0.0/8,10.1.2.3/8" from --gateway-allow`}},
		{"conflicting gateway-allow", []string{"--gateway-allow", "10.0.0.0/8", "--gateway-allow", "!10.0.0.0/8"}, nil,
			[]string{"--gateway-allow (TUNNEL_GATEWAY_ALLOW): the rules do not form a valid allow-list", "conflicting rules",
				`got "10.0.0.0/8,!10.0.0.0/8"`}},
		{"gateway address outside gateway-allow", []string{"--gateway", "192.0.2.1:8443", "--gateway-allow", "10.0.0.0/8,!10.9.0.0/16"}, nil,
			[]string{"--gateway (TUNNEL_GATEWAY): outside --gateway-allow (TUNNEL_GATEWAY_ALLOW): no rule admits it",
				`got "192.0.2.1:8443"`, "want a gateway address that --gateway-allow RULES (TUNNEL_GATEWAY_ALLOW) admits"}},
		{"gateway address denied by gateway-allow", []string{"--gateway", "[::ffff:10.9.0.1]:8443", "--gateway-allow", "10.0.0.0/8,!10.9.0.0/16"}, nil,
			[]string{"--gateway (TUNNEL_GATEWAY): outside --gateway-allow (TUNNEL_GATEWAY_ALLOW): denied by !10.9.0.0/16;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append(tunnelArgs(f), "-L", "1=a"), tt.args...)
			fw, err := ParseForward(args, envMap(tt.env), nil)
			if err == nil {
				t.Fatalf("no error; got %+v", fw)
			}
			var se *settings.Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &se) {
				t.Errorf("error is not a settings.Error wrapping ErrInvalid: %v", err)
			}
			testnet.InOrder(t, err.Error(), tt.want)
		})
	}

	// A gateway given by name is checked by the tunnel after resolution,
	// and an address the rules admit is fine.
	for _, gw := range []string{"gw.example.com:8443", "10.1.2.3:8443"} {
		args := append(tunnelArgs(f), "-L", "1=a", "--gateway", gw, "--gateway-allow", "10.0.0.0/8,!10.9.0.0/16")
		if _, err := ParseForward(args, envMap(nil), nil); err != nil {
			t.Errorf("--gateway %s: %v", gw, err)
		}
	}
}

func TestTunnelNormalize(t *testing.T) {
	tu := Tunnel{Gateways: []string{"gw.example.com:8443"}, Pins: []string{colonHex(testPin), "bad"}}
	tu.Normalize()
	if tu.ServerName != "gw.example.com" || !slices.Equal(tu.Pins, []string{testPin, "bad"}) {
		t.Errorf("Normalize: server name %q, pins %q", tu.ServerName, tu.Pins)
	}
	if err := tu.Validate(); err == nil || !strings.Contains(err.Error(), `--pin (TUNNEL_PIN): not a SHA-256 fingerprint: pin "bad"`) {
		t.Errorf("Validate after Normalize: %v", err)
	}
	// Validate accepts any form ParsePin reads, for settings built in code.
	f := newTestFiles(t)
	tu = Tunnel{Gateways: []string{"gw.example.com:8443"}, Cert: f.cert, Key: f.key, CA: f.ca, ServerName: "gw.example.com",
		ConnectTimeout: 1, LogLevel: "info", LogFormat: "json", Pins: []string{"sha256:" + colonHex(testPin)}}
	if err := tu.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
