package settings

import (
	"errors"
	"slices"
	"testing"
)

type runSettings struct {
	AllowID  []string `flag:"allow-id"`
	Allow    string   `flag:"allow"`
	Listen   string   `flag:"listen"`
	Shutdown int      `flag:"drain-timeout"`
}

type otherSettings struct {
	Dir    string `flag:"dir"`
	Listen string `flag:"listen"`
}

func TestEnvNames(t *testing.T) {
	got, err := EnvNames("GATEWAY_", &runSettings{}, otherSettings{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GATEWAY_ALLOW", "GATEWAY_ALLOW_ID", "GATEWAY_DIR", "GATEWAY_DRAIN_TIMEOUT", "GATEWAY_LISTEN"}
	if !slices.Equal(got, want) {
		t.Errorf("EnvNames = %q, want %q", got, want)
	}
	if _, err := EnvNames("X_", 3); err == nil {
		t.Errorf("EnvNames(int): no error")
	}
}

func TestUnknown(t *testing.T) {
	names, err := EnvNames("GATEWAY_", &runSettings{}, &otherSettings{})
	if err != nil {
		t.Fatal(err)
	}
	explain, err := EnvNames("GATEWAY_EXPLAIN_", &otherSettings{})
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, explain...)
	environ := []string{
		"GATEWAY_ALLOWID=any",           // underscore missing
		"GATEWAY_LISTN=:8443",           // letter missing
		"GATEWAY_ALLOW=10.0.0.0/8",      // a setting
		"GATEWAY_EXPLAIN_DIR=x",         // another command's setting
		"GATEWAY_FROBNICATE=1",          // nothing near
		"GATEWAY_DRAIN_TIMEOUTS=5s",     // letter too many
		"TUNNEL_GATEWAYS=gw:8443",       // another prefix
		"GATEWAY_=x",                    // the prefix alone
		"PATH=/bin",                     // unrelated
		"GATEWAY_ALLOWID=again",         // reported once
		"gateway_allow_id=lower",        // case matters for variables
		"GATEWAY_EXPLAIN_LISTN=x",       // misspelled explain setting
		"GATEWAY_NO_EQUALS_SIGN_AT_ALL", // tolerated
	}
	got := Unknown("GATEWAY_", environ, names)
	want := []string{
		"GATEWAY_ALLOWID is not a setting (ignored); did you mean GATEWAY_ALLOW_ID?",
		"GATEWAY_DRAIN_TIMEOUTS is not a setting (ignored); did you mean GATEWAY_DRAIN_TIMEOUT?",
		"GATEWAY_EXPLAIN_LISTN is not a setting (ignored); did you mean GATEWAY_EXPLAIN_LISTEN?",
		"GATEWAY_FROBNICATE is not a setting (ignored)",
		"GATEWAY_LISTN is not a setting (ignored); did you mean GATEWAY_LISTEN?",
		"GATEWAY_NO_EQUALS_SIGN_AT_ALL is not a setting (ignored)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Unknown =\n%q\nwant\n%q", got, want)
	}
	if got := Unknown("GATEWAY_", []string{"GATEWAY_LISTEN=x", "HOME=/"}, names); got != nil {
		t.Errorf("no unknown variables: got %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"ALLOWID", "ALLOW_ID", 1}, {"abc", "abc", 0}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestIndexAndChecks(t *testing.T) {
	type s struct {
		File    string `flag:"file" meta:"FILE"`
		Timeout int    `flag:"timeout" default:"7"`
	}
	set := Index[s]("X_")
	f := set["File"]
	if f.Name() != "file" || f.Flag() != "--file" || f.Env() != "X_FILE" || f.WithMeta() != "--file FILE (X_FILE)" {
		t.Errorf("setting File: %q %q %q %q", f.Name(), f.Flag(), f.Env(), f.WithMeta())
	}
	if e := RequiredFile(f, ""); e == nil || e.Problem != "required" || e.Env != "X_FILE" {
		t.Errorf("RequiredFile(\"\") = %v", e)
	}
	if e := OptionalFile(f, t.TempDir()); e == nil || e.Value == "" {
		t.Errorf("OptionalFile(a directory) = %v, want an error", e)
	}
	if e := AtLeastOne(set["Timeout"], 0); e == nil || e.Want != "a whole number of 1 or more, e.g. 7" {
		t.Errorf("AtLeastOne(0) = %v", e)
	}
	if e := OneOf(f, "c", []string{"a", "b"}); e == nil || e.Want != `"a" or "b"` {
		t.Errorf("OneOf = %v", e)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Index of a bad struct does not panic")
		}
	}()
	type bad struct {
		F float64 `flag:"f"`
	}
	Index[bad]("X_")
}

func TestSepTag(t *testing.T) {
	type ok struct {
		L []string `flag:"l" sep:","`
	}
	var v ok
	if _, err := Parse("c", "X_", &v, []string{"--l", "a, b,,c", "--l", "d"}, envMap(nil), nil); err != nil || !slices.Equal(v.L, []string{"a", "b", "c", "d"}) {
		t.Errorf("sep: L = %q, err %v", v.L, err)
	}
	type notSlice struct {
		S string `flag:"s" sep:","`
	}
	type otherSep struct {
		L []string `flag:"l" sep:";"`
	}
	for _, dst := range []any{&notSlice{}, &otherSep{}} {
		if _, err := Parse("c", "X_", dst, nil, envMap(nil), nil); err == nil || errorsIsInvalid(err) {
			t.Errorf("%T: err %v, want a struct mistake", dst, err)
		}
	}
}

func errorsIsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }
