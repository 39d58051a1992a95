package settings

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

// FuzzParse drives the generic mechanism with arbitrary arguments (NUL
// separated) and environment (KEY=VALUE lines): it never panics, reports
// bad input only as ErrInvalid or flag.ErrHelp, and the positional
// arguments it returns come from args, in order.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, argText, envText string) {
		var args []string
		if argText != "" {
			args = strings.Split(argText, "\x00")
		}
		env := map[string]string{}
		for line := range strings.SplitSeq(envText, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		var s sample
		rest, err := Parse("sample", samplePrefix, &s, args, envMap(env), nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse(%q, %q): error is neither ErrInvalid nor ErrHelp: %v", args, env, err)
			}
			return
		}
		i := 0
		for _, r := range rest {
			for i < len(args) && args[i] != r {
				i++
			}
			if i == len(args) {
				t.Fatalf("Parse(%q): rest %q is not a subsequence of the arguments", args, rest)
			}
			i++
		}
	})
}
