package settings

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// EnvNames returns the environment variables read by the settings of the
// structs that dsts point to (or are), for a program whose variables start
// with prefix, sorted and without duplicates. Pass every settings struct of
// every command of a program, so that [Unknown] knows all their names.
func EnvNames(prefix string, dsts ...any) ([]string, error) {
	var names []string
	for _, dst := range dsts {
		t := reflect.TypeOf(dst)
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("settings: EnvNames needs structs or pointers to structs, got %T", dst)
		}
		list, err := settingsOf(t, prefix)
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			names = append(names, s.env)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Unknown returns a warning for each variable in environ (as os.Environ
// returns it: "NAME=value") whose name starts with prefix but is none of
// names, naming the closest known name when one is near:
//
//	GATEWAY_ALLOWID is not a setting (ignored); did you mean GATEWAY_ALLOW_ID?
//
// Parse reads only the variables of its settings, so without this check a
// misspelled variable would be ignored silently. names should hold every
// variable of every command of the program (see [EnvNames]), so that a
// variable of one command is not reported while another runs. The warnings
// are sorted by variable name; nil means none.
func Unknown(prefix string, environ []string, names []string) []string {
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, prefix) && len(name) > len(prefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	unknown = slices.Compact(unknown)
	var out []string
	for _, name := range unknown {
		w := name + " is not a setting (ignored)"
		if near := closest(prefix, name, names); near != "" {
			w += "; did you mean " + near + "?"
		}
		out = append(out, w)
	}
	return out
}

// closest returns the name in names nearest to name by edit distance over
// the part after prefix, ignoring case (and counting names that differ
// only in underscores, ALLOWID for ALLOW_ID, as equal), or "" when none is
// near enough to be a likely misspelling: at most one edit per four bytes,
// and at least one.
func closest(prefix, name string, names []string) string {
	key := func(s string) string { return strings.ToUpper(strings.TrimPrefix(s, prefix)) }
	squash := func(s string) string { return strings.ReplaceAll(s, "_", "") }
	k := key(name)
	best, bestD := "", -1
	for _, n := range names {
		kn := key(n)
		d := editDistance(k, kn)
		if squash(k) == squash(kn) {
			d = 0
		}
		if bestD < 0 || d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if bestD < 0 || bestD > max(1, len(k)/4) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
