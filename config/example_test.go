package config_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-gw/portcullis/config"
)

// A program defines its own settings with the same tags and gets flags,
// environment variables, defaults and --help from one struct.
func ExampleParse() {
	type bench struct {
		Conns    int           `flag:"conns" default:"100" help:"connections to open"`
		Duration time.Duration `flag:"duration" default:"30s" help:"how long to run"`
		Routes   []string      `flag:"route" meta:"NAME" help:"routes to drive"`
	}
	env := map[string]string{"BENCH_CONNS": "500", "BENCH_DURATION": "5m", "BENCH_ROUTE": "pg, redis"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	var b bench
	rest, err := config.Parse("tunnel bench", "BENCH_", &b, []string{"--duration", "1m", "extra"}, lookup, nil)
	fmt.Println(b.Conns, b.Duration, b.Routes, rest, err)

	_, err = config.Parse("tunnel bench", "BENCH_", &b, []string{"--conns", "lots"}, lookup, nil)
	fmt.Println(errors.Is(err, config.ErrInvalid))
	fmt.Println(err)
	// Output:
	// 500 1m0s [pg redis] [extra] <nil>
	// true
	// --conns (BENCH_CONNS): not a whole number: strconv.ParseInt: parsing "lots": invalid syntax; got "lots" from --conns; want a whole number in decimal, e.g. 100
}

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
	// --cert (TUNNEL_CERT): required; got ""; want a readable PEM file with the client certificate chain, e.g. --cert ~/.portcullis/me.crt
	// --key (TUNNEL_KEY): required; got ""; want a readable PEM file with the private key of --cert, e.g. --key ~/.portcullis/me.key
	// --ca (TUNNEL_CA): required; got ""; want a readable PEM file with the CA certificates that sign the gateway's certificate, e.g. --ca ~/.portcullis/gateway-ca.crt
}
