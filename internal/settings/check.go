package settings

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Index lists the settings of struct type T by Go field name, for
// validation code to report problems with [Setting.Fail] and the checks
// below. A settings struct is fixed at compile time and covered by tests,
// so a mistake in it is a bug: Index panics.
func Index[T any](prefix string) map[string]*Setting {
	list, err := settingsOf(reflect.TypeFor[T](), prefix)
	if err != nil {
		panic(err)
	}
	m := make(map[string]*Setting, len(list))
	for _, s := range list {
		m[s.goName] = s
	}
	return m
}

// WithMeta returns "--name META (ENV)", to tell which flag to add.
func (s *Setting) WithMeta() string {
	n := "--" + s.name
	if s.meta != "" {
		n += " " + s.meta
	}
	return n + " (" + s.env + ")"
}

// Fail reports a problem found by validation with value: an [*Error]
// naming the setting, with its accepted forms as Want (callers may replace
// it).
func (s *Setting) Fail(value, problem string, cause error) *Error {
	return &Error{
		Flag: "--" + s.name, Short: s.shortFlag(), Env: s.env,
		Problem: problem, Value: value, Want: s.forms, Err: cause,
	}
}

// CheckFile reports whether path names something the program can read: it
// must exist and not be a directory, and a regular file must open. Devices
// and pipes (such as /dev/fd/N from a shell's process substitution) are not
// opened, so nothing blocks and nothing is consumed.
func CheckFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a file", Quote(path))
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return nil
}

// OrList formats list as `"a", "b" or "c"`.
func OrList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// RequiredFile reports an empty path as required, and otherwise checks it
// like OptionalFile.
func RequiredFile(s *Setting, path string) *Error {
	if path == "" {
		return s.Fail("", "required", nil)
	}
	return OptionalFile(s, path)
}

// OptionalFile accepts an empty path, and otherwise a file that
// [CheckFile] accepts.
func OptionalFile(s *Setting, path string) *Error {
	if path == "" {
		return nil
	}
	if err := CheckFile(path); err != nil {
		return s.Fail(path, "cannot read the file", err)
	}
	return nil
}

// OneOf accepts v only if it is in list.
func OneOf(s *Setting, v string, list []string) *Error {
	if slices.Contains(list, v) {
		return nil
	}
	e := s.Fail(v, "unknown value", nil)
	e.Want = OrList(list)
	return e
}

// Positive accepts a duration greater than 0.
func Positive(s *Setting, d time.Duration) *Error {
	if d > 0 {
		return nil
	}
	e := s.Fail(d.String(), "must be greater than 0", nil)
	e.Want = "a duration greater than 0, e.g. " + s.def
	return e
}

// NotNegative accepts a duration of 0 or more; zero says what 0 does
// ("means never").
func NotNegative(s *Setting, d time.Duration, zero string) *Error {
	if d >= 0 {
		return nil
	}
	e := s.Fail(d.String(), "must not be negative", nil)
	e.Want = "a duration of 0 or more, e.g. " + s.def + " (0 " + zero + ")"
	return e
}

// AtLeastOne accepts a whole number of 1 or more.
func AtLeastOne(s *Setting, n int) *Error {
	if n >= 1 {
		return nil
	}
	e := s.Fail(strconv.Itoa(n), "must be at least 1", nil)
	e.Want = "a whole number of 1 or more, e.g. " + s.def
	return e
}

// InRange fails when n is outside lo..hi.
func InRange(s *Setting, n, lo, hi int) *Error {
	if lo <= n && n <= hi {
		return nil
	}
	e := s.Fail(strconv.Itoa(n), fmt.Sprintf("must be from %d to %d", lo, hi), nil)
	e.Want = fmt.Sprintf("a whole number from %d to %d, e.g. %s", lo, hi, s.def)
	return e
}
