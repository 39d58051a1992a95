package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/settings"
	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/pki"
)

// The tags repeat what pki defines; they must not drift apart.
func TestPKITagsMatchPKI(t *testing.T) {
	if s, err := ParsePKIInit([]string{"--dir", "d"}, envMap(nil), nil); err != nil || s.Name != pki.DefaultCAName || s.KeyType != string(pki.ECDSAP256) {
		t.Errorf("init defaults: %+v, %v; want name %q and key type %s", s, err, pki.DefaultCAName, pki.ECDSAP256)
	}
	keyTypes := strings.Replace(pki.KeyTypeNames(), ", ed25519", " or ed25519", 1)
	for _, typ := range []reflect.Type{reflect.TypeFor[PKIInit](), reflect.TypeFor[PKIIssue]()} {
		f, _ := typ.FieldByName("KeyType")
		if !strings.HasSuffix(f.Tag.Get("help"), keyTypes) {
			t.Errorf("%v.KeyType help %q does not end with the key types %q", typ, f.Tag.Get("help"), keyTypes)
		}
	}
	names := pki.ReasonNames()
	reasons := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if f, _ := reflect.TypeFor[PKIRevoke]().FieldByName("Reason"); !strings.HasSuffix(f.Tag.Get("help"), reasons) {
		t.Errorf("PKIRevoke.Reason help %q does not end with the reasons %q", f.Tag.Get("help"), reasons)
	}
}

func TestParsePKIIssue(t *testing.T) {
	env := envMap(map[string]string{"GATEWAY_DIR": "ca", "GATEWAY_SERVER": "true", "GATEWAY_DNS": "a.example.com, b.example.com",
		"GATEWAY_TTL": "30d"})
	s, err := ParsePKIIssue([]string{"--name", "gw", "--ip", "127.0.0.1,::1", "--ip", "10.0.0.5"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := s.Request()
	if req.Kind != pki.Server || req.Name != "gw" || len(req.DNS) != 2 || len(req.IPs) != 3 || req.TTL != 30*24*time.Hour || req.KeyType != pki.ECDSAP256 {
		t.Errorf("request %+v", req)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--server", "--name", "gw"}, []string{"--dir (GATEWAY_DIR): required", "--server needs at least one --dns or --ip"}},
		{[]string{"--dir", "d", "--name", "x", "--ttl", "30s"}, []string{"one of --server or --client", "--ttl (GATEWAY_TTL): must be at least 1m0s", `got "30s"`}},
		{[]string{"--dir", "d", "--client", "--name", "x", "--ip", "fe80::1%eth0"}, []string{"--ip (GATEWAY_IP): not an IP address", `"fe80::1%eth0"`}},
		{[]string{"--dir", "d", "--client", "--name", "x", "--key-type", "dsa"}, []string{"--key-type (GATEWAY_KEY_TYPE): unknown key type", "ed25519"}},
		{[]string{"--dir", "d", "--client", "--name", "x", "extra"}, []string{`unexpected argument "extra"`}},
	} {
		_, err := ParsePKIIssue(tc.args, envMap(nil), nil)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", tc.args, err)
			continue
		}
		testnet.InOrder(t, err.Error(), tc.want)
	}
}

func TestParsePKIOthers(t *testing.T) {
	if _, err := ParsePKIRevoke([]string{"--dir", "d"}, envMap(map[string]string{"GATEWAY_CERT": "gw.crt"}), nil); err != nil {
		t.Errorf("revoke with GATEWAY_CERT: %v", err)
	}
	_, err := ParsePKIRevoke([]string{"--dir", "d", "--serial", "01"}, envMap(map[string]string{"GATEWAY_CERT": "gw.crt"}), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "exactly one of --serial or --cert (GATEWAY_CERT") {
		t.Errorf("revoke --serial with GATEWAY_CERT set: err %v, want one naming the variable", err)
	}
	if s, err := ParsePKIRevoke([]string{"--dir", "d", "--serial", "01", "--reason", "key-compromise"}, envMap(nil), nil); err != nil || s.ReasonCode() != pki.ReasonKeyCompromise {
		t.Errorf("revoke --reason key-compromise: %+v, %v", s, err)
	}
	if s, err := ParsePKICRL(nil, envMap(map[string]string{"GATEWAY_DIR": "d", "GATEWAY_VALIDITY": "2d"}), nil); err != nil || time.Duration(s.Validity) != 48*time.Hour {
		t.Errorf("crl from the environment: %+v, %v", s, err)
	}
	if _, err := ParsePKISign([]string{"--dir", "d", "--client"}, envMap(nil), nil); err == nil || !strings.Contains(err.Error(), "--csr (GATEWAY_CSR): required") {
		t.Errorf("sign without --csr: %v", err)
	}
	for _, args := range [][]string{nil, {"a", "b"}} {
		if _, err := ParsePKIShow(args, envMap(nil), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("show %q: err %v, want ErrInvalid", args, err)
		}
	}
	var help bytes.Buffer
	if _, err := ParsePKIShow([]string{"--help"}, envMap(nil), &help); !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(help.String(), "Usage: gateway pki show FILE") {
		t.Errorf("show --help: %v\n%s", err, help.String())
	}
}

// Every pki command's settings struct parses: no mistake in its tags.
func TestPKICommandsAreSettings(t *testing.T) {
	cmds := PKICommands()
	for name, dst := range cmds {
		if _, err := settings.EnvNames(GatewayPrefix, dst); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(cmds) != 6 {
		t.Errorf("PKICommands lists %d commands, want 6", len(cmds))
	}
}

// TestPKIHelpGolden compares the help of each pki command with
// testdata/help/pki-NAME.txt (-update rewrites them) and checks its width.
func TestPKIHelpGolden(t *testing.T) {
	parse := map[string]func([]string, func(string) (string, bool), *bytes.Buffer) error{
		"init": func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParsePKIInit(a, l, w)
			return err
		},
		"issue": func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParsePKIIssue(a, l, w)
			return err
		},
		"sign": func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParsePKISign(a, l, w)
			return err
		},
		"revoke": func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParsePKIRevoke(a, l, w)
			return err
		},
		"crl": func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParsePKICRL(a, l, w)
			return err
		},
		"show": func(a []string, l func(string) (string, bool), w *bytes.Buffer) error {
			_, err := ParsePKIShow(a, l, w)
			return err
		},
	}
	for name, p := range parse {
		t.Run(name, func(t *testing.T) {
			help := helpOf(t, p)
			if !strings.HasPrefix(help, "Usage: gateway pki "+name) {
				t.Errorf("help does not start with the usage line:\n%s", help)
			}
			for i, line := range strings.Split(help, "\n") {
				if len(line) > settings.HelpWidth {
					t.Errorf("line %d is %d columns wide (> %d): %q", i+1, len(line), settings.HelpWidth, line)
				}
			}
			path := filepath.Join("testdata", "help", "pki-"+name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(help), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestPKIHelpGolden -update to create it)", err)
			}
			if help != string(want) {
				t.Errorf("help of pki %s differs from %s (run with -update after a deliberate change):\n%s", name, path, help)
			}
		})
	}
}
