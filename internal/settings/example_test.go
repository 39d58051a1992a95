package settings_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-gw/portcullis/internal/settings"
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
	rest, err := settings.Parse("tunnel bench", "BENCH_", &b, []string{"--duration", "1m", "extra"}, lookup, nil)
	fmt.Println(b.Conns, b.Duration, b.Routes, rest, err)

	_, err = settings.Parse("tunnel bench", "BENCH_", &b, []string{"--conns", "lots"}, lookup, nil)
	fmt.Println(errors.Is(err, settings.ErrInvalid))
	fmt.Println(err)
	// Output:
	// 500 1m0s [pg redis] [extra] <nil>
	// true
	// --conns (BENCH_CONNS): not a whole number: strconv.ParseInt: parsing "lots": invalid syntax; got "lots" from --conns; want a whole number in decimal, e.g. 100
}
