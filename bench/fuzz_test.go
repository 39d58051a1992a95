package bench_test

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/bench"
	"github.com/portcullis-gw/portcullis/config"
)

// FuzzParseSettings feeds arbitrary command lines (fields separated by
// spaces) to ParseSettings: it must return settings that validate, help,
// or an error wrapping config.ErrInvalid; never panic or anything else.
func FuzzParseSettings(f *testing.F) {
	f.Add("--gateway 127.0.0.1:8443 --mode deny --source 127.0.0.2")
	f.Add("--gateway 127.0.0.1:8443 --mode throughput --direction up --streams 4 --size 65536")
	f.Add("--gateway [::1]:1 --mode streams --sessions 3 --concurrency 64 --count 100 --json")
	f.Add("--gateway h:1 --mode handshake --resume --direct --duration 3s")
	f.Add("--gateway h:1 --unsafe-plaintext --mode streams")
	f.Add("--help")
	f.Fuzz(func(t *testing.T, line string) {
		s, err := bench.ParseSettings(strings.Fields(line), func(string) (string, bool) { return "", false }, nil)
		switch {
		case err == nil:
			if verr := s.Validate(); verr != nil {
				t.Fatalf("ParseSettings(%q) accepted settings that do not validate: %v", line, verr)
			}
			if s.NeedsTLS() {
				t.Fatalf("ParseSettings(%q) accepted a TLS mode without readable client files", line)
			}
		case errors.Is(err, flag.ErrHelp), errors.Is(err, config.ErrInvalid):
		default:
			t.Fatalf("ParseSettings(%q): error %v wraps neither config.ErrInvalid nor flag.ErrHelp", line, err)
		}
	})
}
