package config_test

import (
	"fmt"

	"github.com/portcullis-gw/portcullis/config"
)

func ExampleParseLocal() {
	for _, s := range []string{"5432=pg", "[::1]:6379=redis", ":80=web"} {
		l, err := config.ParseLocal(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("listen on %s for route %s\n", l.Bind, l.Route)
	}
	// Output:
	// listen on 127.0.0.1:5432 for route pg
	// listen on [::1]:6379 for route redis
	// listener ":80=web": empty BIND before the colon: write PORT=ROUTE or 127.0.0.1:PORT=ROUTE for this machine only, or 0.0.0.0:PORT=ROUTE for every interface
}

func ExampleParseNC() {
	_, err := config.ParseNC([]string{"--gateway", "gw.example.com:8443", "pg"}, func(string) (string, bool) { return "", false }, nil)
	fmt.Println(err)
	// Output:
	// --cert (TUNNEL_CERT): required; got ""; want a readable PEM file with the client certificate chain, e.g. --cert ~/.portcullis/me.crt, or a PKCS#12 bundle, e.g. --cert ~/.portcullis/me.p12
	// --key (TUNNEL_KEY): required; got ""; want a readable PEM file with the private key of --cert, e.g. --key ~/.portcullis/me.key
	// --ca (TUNNEL_CA): required; got ""; want a readable PEM file with the CA certificates that sign the gateway's certificate, e.g. --ca ~/.portcullis/gateway-ca.crt
}

func ExampleParsePolicy() {
	text := `
allow:
  - 10.0.0.0/8
  - "!10.9.0.0/16"
routes:
  pg:
    backend: db.internal:5432
    identities: ["uri:spiffe://corp/app/*", "cn:dba"]
    networks: ["10.1.0.0/16"]
    max_streams: 200
    dial_timeout: 3s
`
	p, err := config.ParsePolicy([]byte(text), "policy.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("gate:", p.Allow)
	for _, r := range p.Routes {
		fmt.Printf("route %s (line %d) -> %s for %v from %v, at most %d streams, dial timeout %v\n",
			r.Name, r.Line, r.Backend, r.Identities, r.Networks, r.MaxStreams, r.DialTimeout)
	}

	_, err = config.ParsePolicy([]byte(`
routes:
  pg:
    backnd: db.internal:5432
    identities: [alice]
`), "policy.yaml")
	fmt.Println(err)
	// Output:
	// gate: [10.0.0.0/8 !10.9.0.0/16]
	// route pg (line 6) -> db.internal:5432 for [uri:spiffe://corp/app/* cn:dba] from [10.1.0.0/16], at most 200 streams, dial timeout 3s
	// policy.yaml:3: route "pg": no "backend:"; want backend: HOST:PORT with a port from 1 to 65535 (IPv6 in brackets), unix:PATH for a UNIX socket (PATH absolute), builtin:echo or builtin:discard, e.g. db.internal:5432
	// policy.yaml:4: route "pg": unknown key "backnd" (known: backend, identities, networks, max_streams, dial_timeout, proxy_protocol)
	// policy.yaml:5: route "pg": identities: bad identity pattern "alice": unknown form; want one of uri:spiffe://corp/app/* ("*" one path segment, "**" the rest), dns:host.example.com or dns:*.example.com, cn:NAME, ou:UNIT, o:ORG, email:user@example.com, sha256:FINGERPRINT (hex, colons optional), any
}
