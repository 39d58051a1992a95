package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Accepted values of --log-level and --log-format.
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"json", "console"}
)

// Port ranges for splitHostPort.
const (
	anyPort  = 0 // a listener: 0 picks a free port
	dialPort = 1 // a destination: port 0 cannot be dialled
)

// splitHostPort checks "HOST:PORT" and returns its parts. HOST is an IP
// address (IPv6 in brackets, a zone allowed) or a host name; it may be
// empty only if emptyHost. PORT is decimal, from minPort to 65535.
func splitHostPort(s string, emptyHost bool, minPort int) (string, int, error) {
	if after, bracketed := strings.CutPrefix(s, "["); bracketed {
		if i := strings.LastIndexByte(after, ']'); i < 0 || !strings.HasPrefix(after[i+1:], ":") {
			return "", 0, errors.New("no port: add \":PORT\" after the \"]\"")
		}
	} else {
		switch strings.Count(s, ":") {
		case 0:
			return "", 0, errors.New("no port: add \":PORT\"")
		case 1:
		default:
			return "", 0, errors.New("an IPv6 address goes in brackets, e.g. [::1]:8443")
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	if strings.HasPrefix(s, "[") && !strings.Contains(host, ":") {
		return "", 0, errors.New("brackets are for IPv6 addresses only, e.g. [::1]:8443; write other hosts without them")
	}
	if host == "" && !emptyHost {
		return "", 0, errors.New("no host before the port")
	}
	if host != "" {
		if err := checkHost(host); err != nil {
			return "", 0, err
		}
	}
	p, err := parsePort(port, minPort)
	if err != nil {
		return "", 0, err
	}
	return host, p, nil
}

// parsePort parses a decimal port number from minPort to 65535.
func parsePort(s string, minPort int) (int, error) {
	if s == "" {
		return 0, errors.New("no port after the colon")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || int(n) < minPort {
		return 0, fmt.Errorf("port %q is not a number from %d to 65535", s, minPort)
	}
	return int(n), nil
}

// checkHost accepts an IP address (IPv6 without brackets, with an optional
// zone) or a host name: dot-separated labels of letters, digits, '-' and
// '_', at most 253 bytes, optionally ending with a dot. A name made of
// digits and dots only must be a valid IPv4 address.
func checkHost(h string) error {
	if strings.Contains(h, ":") {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return fmt.Errorf("host %s is not a valid IPv6 address", quoteValue(h))
		}
		if strings.Trim(a.Zone(), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return fmt.Errorf("host %s: want an IPv6 zone of letters, digits, '.', '_' and '-'", quoteValue(h))
		}
		return nil
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if strings.Trim(h, "0123456789.") == "" {
		return fmt.Errorf("host %s is not a valid IPv4 address", quoteValue(h))
	}
	name := strings.TrimSuffix(h, ".")
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host name %s must be 1 to 253 bytes long", quoteValue(h))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host name %s has an empty or too long (>63 bytes) label", quoteValue(h))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name %s holds %q; want letters, digits, '-', '_' and dots", quoteValue(h), c)
			}
		}
	}
	return nil
}

// checkFile reports whether path names something the program can read: it
// must exist and not be a directory, and a regular file must open. Devices
// and pipes (such as /dev/fd/N from a shell's process substitution) are not
// opened, so nothing blocks and nothing is consumed.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a file", quoteValue(path))
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

// oneOf reports whether v is in list.
func oneOf(v string, list []string) bool { return slices.Contains(list, v) }

// orList formats list as `"a", "b" or "c"`.
func orList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// settingIndex lists the settings of one of this package's structs by Go
// field name. The structs are fixed at compile time and covered by tests,
// so a failure is a bug: it panics.
func settingIndex(t reflect.Type, prefix string) map[string]*setting {
	list, err := settingsOf(t, prefix)
	if err != nil {
		panic(err)
	}
	m := make(map[string]*setting, len(list))
	for _, s := range list {
		m[s.goName] = s
	}
	return m
}

// withMeta returns "--name META (ENV)", to tell which flag to add.
func (s *setting) withMeta() string {
	n := "--" + s.name
	if s.meta != "" {
		n += " " + s.meta
	}
	return n + " (" + s.env + ")"
}

// fail reports a problem found by validation with value.
func (s *setting) fail(value, problem string, cause error) *SettingError {
	return &SettingError{
		Flag: "--" + s.name, Short: s.shortFlag(), Env: s.env,
		Problem: problem, Value: value, Want: s.forms, Err: cause,
	}
}

func requiredFile(s *setting, path string) *SettingError {
	if path == "" {
		return s.fail("", "required", nil)
	}
	return optionalFile(s, path)
}

func optionalFile(s *setting, path string) *SettingError {
	if path == "" {
		return nil
	}
	if err := checkFile(path); err != nil {
		return s.fail(path, "cannot read the file", err)
	}
	return nil
}

func oneOfSetting(s *setting, v string, list []string) *SettingError {
	if oneOf(v, list) {
		return nil
	}
	e := s.fail(v, "unknown value", nil)
	e.Want = orList(list)
	return e
}

func positive(s *setting, d time.Duration) *SettingError {
	if d > 0 {
		return nil
	}
	e := s.fail(d.String(), "must be greater than 0", nil)
	e.Want = "a duration greater than 0, e.g. " + s.def
	return e
}

func notNegative(s *setting, d time.Duration, zero string) *SettingError {
	if d >= 0 {
		return nil
	}
	e := s.fail(d.String(), "must not be negative", nil)
	e.Want = "a duration of 0 or more, e.g. " + s.def + " (0 " + zero + ")"
	return e
}

func atLeastOne(s *setting, n int) *SettingError {
	if n >= 1 {
		return nil
	}
	e := s.fail(strconv.Itoa(n), "must be at least 1", nil)
	e.Want = "a whole number of 1 or more, e.g. " + s.def
	return e
}

func inRange(s *setting, n, lo, hi int) *SettingError {
	if lo <= n && n <= hi {
		return nil
	}
	e := s.fail(strconv.Itoa(n), fmt.Sprintf("must be from %d to %d", lo, hi), nil)
	e.Want = fmt.Sprintf("a whole number from %d to %d, e.g. %s", lo, hi, s.def)
	return e
}
