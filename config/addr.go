package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/settings"
)

// logLevels returns the accepted values of --log-level.
func logLevels() []string { return []string{"debug", "info", "warn", "error"} }

// logFormats returns the accepted values of --log-format.
func logFormats() []string { return []string{"json", "console"} }

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
			return fmt.Errorf("host %s is not a valid IPv6 address", settings.Quote(h))
		}
		if strings.Trim(a.Zone(), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return fmt.Errorf("host %s: want an IPv6 zone of letters, digits, '.', '_' and '-'", settings.Quote(h))
		}
		return nil
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if strings.Trim(h, "0123456789.") == "" {
		return fmt.Errorf("host %s is not a valid IPv4 address", settings.Quote(h))
	}
	name := strings.TrimSuffix(h, ".")
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host name %s must be 1 to 253 bytes long", settings.Quote(h))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host name %s has an empty or too long (>63 bytes) label", settings.Quote(h))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name %s holds %q; want letters, digits, '-', '_' and dots", settings.Quote(h), c)
			}
		}
	}
	return nil
}
