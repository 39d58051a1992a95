package config

import (
	"net"
	"slices"
	"testing"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/policy"
)

func TestSandboxPolicy(t *testing.T) {
	any, err := conn.ParsePattern("any")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Build(policy.Spec{DialTimeout: 1, Gate: []policy.Rules{{Source: "--allow", Rules: nil}},
		Routes: []policy.RouteSpec{
			{Name: "pg", Backend: "10.0.0.5:5432", Identities: []conn.Pattern{any}},
			{Name: "redis", Backend: "cache.internal:6379", Identities: []conn.Pattern{any}},
			{Name: "echo", Backend: BuiltinEcho, Identities: []conn.Pattern{any}},
		}})
	if err != nil {
		t.Fatalf("policy.Build: %v", err)
	}
	g := &Gateway{Cert: "/etc/p/gw.crt", Key: "/etc/p/gw.key", CA: "/etc/p/ca.crt", Policy: "/srv/policy.yaml"}
	sp := g.Sandbox(pol, &net.TCPAddr{Port: 8443}, &net.TCPAddr{Port: 9090})
	slices.Sort(sp.ConnectTCP)
	if want := []uint16{53, 5432, 6379}; !slices.Equal(sp.ConnectTCP, want) {
		t.Errorf("ConnectTCP %v, want %v (a host name adds 53)", sp.ConnectTCP, want)
	}
	if want := []uint16{8443, 9090}; !slices.Equal(sp.BindTCP, want) {
		t.Errorf("BindTCP %v, want %v", sp.BindTCP, want)
	}
	for _, f := range []string{g.Cert, g.Key, g.CA, g.Policy} {
		if !slices.Contains(sp.Files, f) {
			t.Errorf("Files %q lack %s", sp.Files, f)
		}
	}
	if !slices.Contains(sp.SystemFiles, "/etc/resolv.conf") {
		t.Errorf("SystemFiles %q lack /etc/resolv.conf", sp.SystemFiles)
	}
}
