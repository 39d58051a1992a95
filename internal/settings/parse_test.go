package settings

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/testnet"
)

// rule and pattern stand for a program's own types: list elements parsed
// through encoding.TextUnmarshaler.
type rule struct {
	prefix netip.Prefix
	deny   bool
}

var errNotCanonical = errors.New("not a canonical prefix")

func (r *rule) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	deny := strings.HasPrefix(s, "!")
	s = strings.TrimPrefix(s, "!")
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p != p.Masked() {
		return fmt.Errorf("%w: use %s", errNotCanonical, p.Masked())
	}
	*r = rule{prefix: p, deny: deny}
	return nil
}

func (r rule) String() string {
	if r.deny {
		return "!" + r.prefix.String()
	}
	return r.prefix.String()
}

type pattern struct{ kind, value string }

var errPattern = errors.New("bad identity pattern")

func (p *pattern) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "any" {
		*p = pattern{kind: "any"}
		return nil
	}
	k, v, ok := strings.Cut(s, ":")
	if !ok || v == "" || !slices.Contains([]string{"cn", "ou", "dns", "email", "uri"}, k) {
		return fmt.Errorf("%w %q: want uri:spiffe://corp/app/*, dns:..., cn:..., ou:..., email:... or any", errPattern, s)
	}
	*p = pattern{kind: k, value: v}
	return nil
}

func (p pattern) String() string {
	if p.kind == "any" {
		return "any"
	}
	return p.kind + ":" + p.value
}

type level string

type Common struct {
	Name string `flag:"name" default:"anon" help:"who is asking"`
}

// sample has a setting of every supported kind.
type sample struct {
	Common
	Verbose bool            `flag:"verbose" help:"talk more"`
	Count   int             `flag:"count" default:"3" help:"how many"`
	Wait    time.Duration   `flag:"wait" default:"1s" help:"how long"`
	Level   level           `flag:"level" default:"info" meta:"LEVEL"`
	Tags    []string        `flag:"tag" short:"t" help:"labels"`
	Prefix  netip.Prefix    `flag:"prefix" default:"10.0.0.0/8" meta:"CIDR"`
	Addrs   []netip.Addr    `flag:"addr" meta:"IP"`
	Rules   []rule          `flag:"rules" sep:"," meta:"RULES" problem:"invalid network rules" forms:"IP addresses and CIDR prefixes separated by commas"`
	IDs     []pattern       `flag:"id" meta:"PATTERN" problem:"invalid identity pattern" forms:"uri:spiffe://corp/app/*, dns:..., cn:... or any"`
	OneID   pattern         `flag:"one-id" meta:"PATTERN" problem:"invalid identity pattern" forms:"uri:spiffe://corp/app/*, dns:..., cn:... or any"`
	Waits   []time.Duration `flag:"waits"`
	Nested  struct {
		Deep string `flag:"deep" default:"down"`
	}
	Skipped string `flag:"-" default:"never"`
	Plain   string
}

const samplePrefix = "X_"

// envMap returns a lookup function over m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func parseSample(t *testing.T, args []string, env map[string]string) (*sample, []string, error) {
	t.Helper()
	var s sample
	rest, err := Parse("sample", samplePrefix, &s, args, envMap(env), nil)
	return &s, rest, err
}

func mustParseSample(t *testing.T, args []string, env map[string]string) (*sample, []string) {
	t.Helper()
	s, rest, err := parseSample(t, args, env)
	if err != nil {
		t.Fatalf("Parse(%q, %v): %v", args, env, err)
	}
	return s, rest
}

func TestParseDefaults(t *testing.T) {
	s, rest := mustParseSample(t, nil, nil)
	if len(rest) != 0 {
		t.Errorf("rest = %q, want none", rest)
	}
	if s.Name != "anon" || s.Count != 3 || s.Wait != time.Second || s.Level != "info" || s.Verbose {
		t.Errorf("defaults: got name %q count %d wait %v level %q verbose %v", s.Name, s.Count, s.Wait, s.Level, s.Verbose)
	}
	if s.Prefix != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("Prefix = %v, want 10.0.0.0/8", s.Prefix)
	}
	if s.Nested.Deep != "down" {
		t.Errorf("Nested.Deep = %q, want the default %q", s.Nested.Deep, "down")
	}
	if s.Tags != nil || s.Addrs != nil || s.Rules != nil || s.IDs != nil || s.Waits != nil || s.OneID != (pattern{}) {
		t.Errorf("settings without default are set: %+v", s)
	}
	if s.Skipped != "" || s.Plain != "" {
		t.Errorf("fields that are not settings were set: Skipped %q Plain %q", s.Skipped, s.Plain)
	}
}

func TestParseEnvOnly(t *testing.T) {
	env := map[string]string{
		"X_NAME": "bob", "X_VERBOSE": "true", "X_COUNT": "7", "X_WAIT": "1m30s", "X_LEVEL": "debug",
		"X_TAG": "a,b", "X_PREFIX": "192.168.0.0/16", "X_ADDR": "::1,127.0.0.1",
		"X_RULES": "10.0.0.0/8,!10.9.0.0/16", "X_ID": "cn:alice,any", "X_ONE_ID": "dns:*.example.com",
		"X_WAITS": "1s,2s", "X_DEEP": "deeper",
		// Not settings: must be ignored.
		"X_SKIPPED": "no", "X_PLAIN": "no",
	}
	s, _ := mustParseSample(t, nil, env)
	checkSample(t, s, sampleWant{
		name: "bob", verbose: true, count: 7, wait: 90 * time.Second, level: "debug",
		tags: []string{"a", "b"}, prefix: "192.168.0.0/16", addrs: []string{"::1", "127.0.0.1"},
		rules: []string{"10.0.0.0/8", "!10.9.0.0/16"}, ids: []string{"cn:alice", "any"},
		oneID: "dns:*.example.com", waits: []time.Duration{time.Second, 2 * time.Second}, deep: "deeper",
	})
	if s.Skipped != "" || s.Plain != "" {
		t.Errorf("fields that are not settings were set from the environment: %q %q", s.Skipped, s.Plain)
	}
}

func TestParseFlagsWinOverEnv(t *testing.T) {
	env := map[string]string{
		"X_NAME": "bob", "X_VERBOSE": "true", "X_COUNT": "7", "X_WAIT": "1m30s", "X_LEVEL": "debug",
		"X_TAG": "a,b", "X_PREFIX": "192.168.0.0/16", "X_ADDR": "::1,127.0.0.1",
		"X_RULES": "10.0.0.0/8,!10.9.0.0/16", "X_ID": "cn:alice,any", "X_ONE_ID": "dns:*.example.com",
		"X_WAITS": "1s,2s", "X_DEEP": "deeper",
	}
	args := []string{
		"--name", "carol", "--verbose=false", "-count", "9", "--wait=2h", "--level", "warn",
		"-t", "x", "--tag", "y,z", "--prefix", "fd00::/8", "--addr", "10.1.2.3",
		"--rules", "192.0.2.0/24", "--rules", "!192.0.2.128/25,::1", "--id", "ou:ops",
		"--one-id", "email:a@example.com", "--waits", "5ms", "--deep", "deepest",
	}
	s, _ := mustParseSample(t, args, env)
	checkSample(t, s, sampleWant{
		name: "carol", verbose: false, count: 9, wait: 2 * time.Hour, level: "warn",
		tags: []string{"x", "y,z"}, prefix: "fd00::/8", addrs: []string{"10.1.2.3"},
		rules: []string{"192.0.2.0/24", "!192.0.2.128/25", "::1/128"}, ids: []string{"ou:ops"},
		oneID: "email:a@example.com", waits: []time.Duration{5 * time.Millisecond}, deep: "deepest",
	})
}

type sampleWant struct {
	name    string
	verbose bool
	count   int
	wait    time.Duration
	level   level
	tags    []string
	prefix  string
	addrs   []string
	rules   []string
	ids     []string
	oneID   string
	waits   []time.Duration
	deep    string
}

func checkSample(t *testing.T, s *sample, w sampleWant) {
	t.Helper()
	if s.Name != w.name || s.Verbose != w.verbose || s.Count != w.count || s.Wait != w.wait || s.Level != w.level {
		t.Errorf("scalars: got %q %v %d %v %q, want %q %v %d %v %q",
			s.Name, s.Verbose, s.Count, s.Wait, s.Level, w.name, w.verbose, w.count, w.wait, w.level)
	}
	if !slices.Equal(s.Tags, w.tags) {
		t.Errorf("Tags = %q, want %q", s.Tags, w.tags)
	}
	if s.Prefix.String() != w.prefix {
		t.Errorf("Prefix = %v, want %v", s.Prefix, w.prefix)
	}
	if got := strs(s.Addrs); !slices.Equal(got, w.addrs) {
		t.Errorf("Addrs = %q, want %q", got, w.addrs)
	}
	if got := strs(s.Rules); !slices.Equal(got, w.rules) {
		t.Errorf("Rules = %q, want %q", got, w.rules)
	}
	if got := strs(s.IDs); !slices.Equal(got, w.ids) {
		t.Errorf("IDs = %q, want %q", got, w.ids)
	}
	if s.OneID.String() != w.oneID {
		t.Errorf("OneID = %q, want %q", s.OneID, w.oneID)
	}
	if !slices.Equal(s.Waits, w.waits) {
		t.Errorf("Waits = %v, want %v", s.Waits, w.waits)
	}
	if s.Nested.Deep != w.deep {
		t.Errorf("Nested.Deep = %q, want %q", s.Nested.Deep, w.deep)
	}
}

func strs[T interface{ String() string }](list []T) []string {
	if list == nil {
		return nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v.String()
	}
	return out
}

func TestParseRepeatable(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"env commas with blanks and empties", nil, map[string]string{"X_TAG": " a , b,,c ,"}, []string{"a", "b", "c"}},
		{"env only blanks is unset", nil, map[string]string{"X_TAG": " , ,"}, nil},
		{"flags add in order", []string{"-t", "x", "--tag", "y", "-tag=z"}, nil, []string{"x", "y", "z"}},
		{"flags replace env", []string{"--tag", "x"}, map[string]string{"X_TAG": "a,b"}, []string{"x"}},
		{"a comma in a flag is part of the value", []string{"--tag", "a,b"}, nil, []string{"a,b"}},
		{"empty flag value is kept", []string{"--tag", ""}, nil, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := mustParseSample(t, tt.args, tt.env)
			if !slices.Equal(s.Tags, tt.want) {
				t.Errorf("Tags = %q, want %q", s.Tags, tt.want)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", false},
		{[]string{"--verbose"}, "", true},
		{[]string{"-verbose"}, "false", true},
		{[]string{"--verbose=false"}, "true", false},
		{nil, "1", true},
		{nil, "t", true},
		{nil, "0", false},
	}
	for _, tt := range tests {
		s, _ := mustParseSample(t, tt.args, map[string]string{"X_VERBOSE": tt.env})
		if s.Verbose != tt.want {
			t.Errorf("args %q, X_VERBOSE=%q: Verbose = %v, want %v", tt.args, tt.env, s.Verbose, tt.want)
		}
	}
}

func TestParseEmptyEnvIsUnset(t *testing.T) {
	s, _ := mustParseSample(t, nil, map[string]string{"X_COUNT": "", "X_NAME": ""})
	if s.Count != 3 || s.Name != "anon" {
		t.Errorf("empty variables: Count %d Name %q, want the defaults 3 and anon", s.Count, s.Name)
	}
}

func TestParsePositional(t *testing.T) {
	tests := []struct {
		args      []string
		wantRest  []string
		wantCount int
	}{
		{nil, []string{}, 3},
		{[]string{"a"}, []string{"a"}, 3},
		{[]string{"a", "--count", "2", "b"}, []string{"a", "b"}, 2},
		{[]string{"--count", "2", "a", "--", "--count", "5", "-"}, []string{"a", "--count", "5", "-"}, 2},
		{[]string{"-", "--count=4"}, []string{"-"}, 4},
		{[]string{"--", "--count=4"}, []string{"--count=4"}, 3},
	}
	for _, tt := range tests {
		s, rest := mustParseSample(t, tt.args, nil)
		if !slices.Equal(rest, tt.wantRest) || s.Count != tt.wantCount {
			t.Errorf("Parse(%q): rest %q count %d, want %q %d", tt.args, rest, s.Count, tt.wantRest, tt.wantCount)
		}
	}
}

func TestParseKeepsUnsetFields(t *testing.T) {
	s := sample{Verbose: true, Tags: []string{"preset"}, Plain: "mine"}
	if _, err := Parse("sample", samplePrefix, &s, nil, envMap(nil), nil); err != nil {
		t.Fatal(err)
	}
	if !s.Verbose || !slices.Equal(s.Tags, []string{"preset"}) || s.Plain != "mine" {
		t.Errorf("preset fields changed: Verbose %v Tags %q Plain %q", s.Verbose, s.Tags, s.Plain)
	}
}

func TestParseLooksUpDerivedNamesOnly(t *testing.T) {
	var asked []string
	lookup := func(k string) (string, bool) {
		asked = append(asked, k)
		return "", false
	}
	var s sample
	if _, err := Parse("sample", samplePrefix, &s, nil, lookup, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"X_NAME", "X_VERBOSE", "X_COUNT", "X_WAIT", "X_LEVEL", "X_TAG", "X_PREFIX", "X_ADDR",
		"X_RULES", "X_ID", "X_ONE_ID", "X_WAITS", "X_DEEP"}
	if !slices.Equal(asked, want) {
		t.Errorf("looked up %q, want %q", asked, want)
	}
}

func TestParseNilLookupReadsProcessEnv(t *testing.T) {
	t.Setenv("X_NAME", "from-os")
	var s sample
	if _, err := Parse("sample", samplePrefix, &s, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if s.Name != "from-os" {
		t.Errorf("Name = %q, want %q from the process environment", s.Name, "from-os")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the message, in order within each error
	}{
		{"bad duration in env", nil, map[string]string{"X_WAIT": "soon"},
			[]string{`--wait (X_WAIT): not a duration`, `got "soon" from $X_WAIT`, "want a duration such as 10s"}},
		{"bad int flag", []string{"--count", "many"}, nil,
			[]string{`--count (X_COUNT): not a whole number`, `got "many" from --count`, "want a whole number"}},
		{"bad bool flag", []string{"--verbose=maybe"}, nil,
			[]string{`--verbose (X_VERBOSE): not a boolean`, `got "maybe" from --verbose`, "want true or false"}},
		{"bad bool env", nil, map[string]string{"X_VERBOSE": "yes"},
			[]string{`--verbose (X_VERBOSE): not a boolean`, `got "yes" from $X_VERBOSE`}},
		{"bad text value flag", []string{"--prefix", "10.0.0.0/40"}, nil,
			[]string{`--prefix (X_PREFIX): invalid value`, `got "10.0.0.0/40" from --prefix`, "want CIDR"}},
		{"bad element in env list", nil, map[string]string{"X_ADDR": "::1, nope"},
			[]string{`--addr (X_ADDR): invalid value`, `got "::1,nope" from $X_ADDR`, "want IP"}},
		{"bad duration element", nil, map[string]string{"X_WAITS": "1s,forever"},
			[]string{`--waits (X_WAITS): not a duration`, `from $X_WAITS`}},
		{"bad rules in env", nil, map[string]string{"X_RULES": "10.0.0.0/33"},
			[]string{`--rules (X_RULES): invalid network rules`, `got "10.0.0.0/33" from $X_RULES`, "want IP addresses and CIDR prefixes"}},
		{"bad rules flag", []string{"--rules", "10.0.0.0/8", "--rules", "nonsense"}, nil,
			[]string{`--rules (X_RULES): invalid network rules`, `got "nonsense" from --rules`}},
		{"bad pattern flag", []string{"--id", "foo:bar"}, nil,
			[]string{`--id (X_ID): invalid identity pattern`, `got "foo:bar" from --id`, "uri:spiffe://"}},
		{"bad short flag", []string{"-t", "ok", "--one-id", "cn:"}, nil,
			[]string{`--one-id (X_ONE_ID): invalid identity pattern`, `got "cn:"`}},
		{"unknown flag", []string{"--nope"}, nil,
			[]string{"sample: flag provided but not defined: -nope", `run "sample --help"`}},
		{"missing argument", []string{"--count"}, nil,
			[]string{"sample: flag needs an argument: -count"}},
		{"two bad variables", nil, map[string]string{"X_COUNT": "x", "X_WAIT": "y"},
			[]string{`--count (X_COUNT)`, `got "x" from $X_COUNT`, "\n", `--wait (X_WAIT)`, `got "y" from $X_WAIT`}},
		{"bad flag and bad variable", []string{"--count", "x"}, map[string]string{"X_WAIT": "y"},
			[]string{`got "x" from --count`, "\n", `got "y" from $X_WAIT`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseSample(t, tt.args, tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			testnet.InOrder(t, err.Error(), tt.want)
		})
	}
}

func TestParseSettingErrorFields(t *testing.T) {
	_, _, err := parseSample(t, nil, map[string]string{"X_WAIT": "soon"})
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if se.Flag != "--wait" || se.Env != "X_WAIT" || se.Value != "soon" || se.Source != "$X_WAIT" || se.Err == nil {
		t.Errorf("Error = %+v", se)
	}
	// The cause stays reachable.
	_, _, err = parseSample(t, []string{"--id", "foo:bar"}, nil)
	if !errors.Is(err, errPattern) {
		t.Errorf("error %v does not wrap errPattern", err)
	}
	_, _, err = parseSample(t, []string{"--rules", "1.2.3.4/8"}, nil)
	if !errors.Is(err, errNotCanonical) {
		t.Errorf("error %v does not wrap errNotCanonical", err)
	}
}

func TestParseBadEnvOverriddenByFlag(t *testing.T) {
	s, _, err := parseSample(t, []string{"--count", "5", "--addr", "::1"},
		map[string]string{"X_COUNT": "lots", "X_ADDR": "nope"})
	if err != nil {
		t.Fatalf("a flag replaces a bad variable, yet: %v", err)
	}
	if s.Count != 5 || len(s.Addrs) != 1 {
		t.Errorf("Count %d Addrs %v, want 5 and [::1]", s.Count, s.Addrs)
	}
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help", "--help=true"} {
		t.Run(arg, func(t *testing.T) {
			var buf bytes.Buffer
			var s sample
			// A bad variable does not get in the way of help.
			rest, err := Parse("sample", samplePrefix, &s, []string{"--count", "2", arg, "--tag", "x"},
				envMap(map[string]string{"X_WAIT": "bad"}), &buf)
			if !errors.Is(err, flag.ErrHelp) || errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			if rest != nil {
				t.Errorf("rest = %q, want nil", rest)
			}
			testnet.InOrder(t, buf.String(), []string{
				"Usage: sample [flags]\n", "Flags:\n",
				"  --name STRING", "(default anon) [$X_NAME]",
				"  --verbose ", "[$X_VERBOSE]",
				"  --count N ", "(default 3) [$X_COUNT]",
				"  --wait DURATION ", "(default 1s) [$X_WAIT]",
				"  --level LEVEL ", "(default info) [$X_LEVEL]",
				"  -t, --tag STRING ", "(repeatable) [$X_TAG, comma separated]",
				"  --prefix CIDR ", "(default 10.0.0.0/8) [$X_PREFIX]",
				"  --addr IP ", "[$X_ADDR, comma separated]",
				"  --rules RULES ", "(repeatable) [$X_RULES, comma separated]",
				"  --id PATTERN ", "[$X_ID, comma separated]",
				"  --one-id PATTERN ", "[$X_ONE_ID]",
				"  --waits DURATION ", "[$X_WAITS, comma separated]",
				"  --deep STRING ", "(default down) [$X_DEEP]",
				"  -h, --help ", "show this help",
				"X_ and the flag name",
			})
			if strings.Contains(buf.String(), "skipped") || strings.Contains(buf.String(), "PLAIN") {
				t.Errorf("help lists fields that are not settings:\n%s", buf.String())
			}
		})
	}
	// A nil writer discards the help.
	var s sample
	if _, err := Parse("sample", samplePrefix, &s, []string{"-h"}, envMap(nil), nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("with nil usage: err = %v, want flag.ErrHelp", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestParseHelpWriteError(t *testing.T) {
	var s sample
	_, err := Parse("sample", samplePrefix, &s, []string{"-h"}, envMap(nil), failWriter{})
	if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the write error", err)
	}
}

func TestParseStructMistakes(t *testing.T) {
	type badKind struct {
		F float64 `flag:"f"`
	}
	type badSlice struct {
		F [][]string `flag:"f"`
	}
	type badRuleSlice struct {
		F [][]rule `flag:"f"`
	}
	type badPointer struct {
		F *string `flag:"f"`
	}
	type badMap struct {
		F map[string]string `flag:"f"`
	}
	type badName struct {
		F string `flag:"Bad"`
	}
	type badName2 struct {
		F string `flag:"a_b"`
	}
	type badName3 struct {
		F string `flag:"x-"`
	}
	type dupName struct {
		A string `flag:"a"`
		B string `flag:"a"`
	}
	type dupShort struct {
		A string `flag:"a" short:"x"`
		B string `flag:"b" short:"x"`
	}
	type shortIsLong struct {
		A string `flag:"a"`
		B string `flag:"b" short:"a"`
	}
	type longShort struct {
		A string `flag:"a" short:"xy"`
	}
	type helpName struct {
		A string `flag:"help"`
	}
	type hShort struct {
		A string `flag:"a" short:"h"`
	}
	type badDefault struct {
		N int `flag:"n" default:"x"`
	}
	type badListDefault struct {
		D []time.Duration `flag:"d" default:"1s,x"`
	}
	type defaultNoFlag struct {
		N int `default:"1"`
	}
	type unexported struct {
		n int `flag:"n"`
	}
	type inner struct {
		X string `flag:"x"`
	}
	type inner2 struct {
		X string `flag:"y"`
	}
	type dupGoName struct {
		A inner
		B inner2
	}
	n := 0
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"not a pointer", sample{}, "pointer to a struct"},
		{"nil pointer", (*sample)(nil), "pointer to a struct"},
		{"pointer to int", &n, "pointer to a struct"},
		{"float", &badKind{}, "unsupported type float64"},
		{"slice of slices", &badSlice{}, "unsupported element type"},
		{"slice of rule lists", &badRuleSlice{}, "unsupported element type"},
		{"pointer field", &badPointer{}, "unsupported type *string"},
		{"map field", &badMap{}, "unsupported type"},
		{"upper-case name", &badName{}, `flag name "Bad"`},
		{"underscore name", &badName2{}, `flag name "a_b"`},
		{"trailing dash", &badName3{}, `flag name "x-"`},
		{"duplicate name", &dupName{}, `flag "a" is taken`},
		{"duplicate short", &dupShort{}, `flag "x" is taken`},
		{"short equals long", &shortIsLong{}, `flag "a" is taken`},
		{"long short", &longShort{}, `short flag "xy"`},
		{"help", &helpName{}, `flag "help" is taken`},
		{"-h", &hShort{}, `flag "h" is taken`},
		{"bad default", &badDefault{}, `default "x"`},
		{"bad list default", &badListDefault{}, `default "1s,x"`},
		{"default without flag", &defaultNoFlag{}, "default tag needs a flag tag"},
		{"unexported setting", &unexported{}, "must be exported"},
		{"same Go name twice", &dupGoName{}, "two settings are named X"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad", "B_", tt.dst, nil, envMap(nil), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("a struct mistake is reported as bad input: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	tests := []struct{ prefix, name, want string }{
		{"GATEWAY_", "allow-file", "GATEWAY_ALLOW_FILE"},
		{"GATEWAY_", "handshake-timeout", "GATEWAY_HANDSHAKE_TIMEOUT"},
		{"TUNNEL_", "local", "TUNNEL_LOCAL"},
		{"", "a-b-c", "A_B_C"},
	}
	for _, tt := range tests {
		if got := EnvName(tt.prefix, tt.name); got != tt.want {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tt.prefix, tt.name, got, tt.want)
		}
	}
}

func TestError(t *testing.T) {
	cause := errors.New("boom")
	e := &Error{Flag: "--local", Short: "-L", Env: "TUNNEL_LOCAL", Problem: "invalid value",
		Value: "x", Source: "-L/--local", Want: "[BIND:]PORT=ROUTE", Err: cause}
	want := `-L/--local (TUNNEL_LOCAL): invalid value: boom; got "x" from -L/--local; want [BIND:]PORT=ROUTE`
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
	if !errors.Is(e, ErrInvalid) || !errors.Is(e, cause) {
		t.Errorf("does not wrap ErrInvalid and its cause")
	}
	e2 := &Error{Flag: "argument ROUTE", Problem: "missing"}
	if got := e2.Error(); got != `argument ROUTE: missing; got ""` {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(e2, ErrInvalid) {
		t.Errorf("without a cause: does not wrap ErrInvalid")
	}
	long := strings.Repeat("é", 200)
	e3 := &Error{Flag: "--x", Problem: "p", Value: long}
	if got := e3.Error(); len(got) > MaxValueInError+40 || !strings.HasSuffix(got, `"...`) {
		t.Errorf("long value not cut: %d bytes: %q", len(got), got)
	}
}
