package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/internal/settings"
)

// ttlError is the error about --ttl among those of err, or nil.
func ttlError(err error) *settings.Error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var se *settings.Error
		if errors.As(e, &se) && se.Flag == "--ttl" {
			return se
		}
	}
	return nil
}

// A --ttl above --max-ttl is an error naming both; the default --ttl
// follows a lower --max-ttl.
func TestEnrollTTLAboveMaxTTL(t *testing.T) {
	_, err := ParseEnrollServe([]string{"--ttl", "30h", "--max-ttl", "24h"}, envMap(nil), nil)
	se := ttlError(err)
	if se == nil || !strings.Contains(se.Error(), "--max-ttl 24h0m0s") || !strings.Contains(se.Error(), "GATEWAY_TTL") {
		t.Fatalf("--ttl 30h --max-ttl 24h: %v", err)
	}
	_, err = ParseEnrollServe([]string{"--max-ttl", "12h"}, envMap(map[string]string{"GATEWAY_TTL": "13h"}), nil)
	if ttlError(err) == nil {
		t.Fatalf("GATEWAY_TTL=13h --max-ttl 12h: %v", err)
	}
	for _, args := range [][]string{{"--max-ttl", "8h"}, {"--ttl", "8h", "--max-ttl", "8h"}, {"--ttl", "48h", "--max-ttl", "0"}} {
		if _, err := ParseEnrollServe(args, envMap(nil), nil); ttlError(err) != nil {
			t.Errorf("%q: %v", args, ttlError(err))
		}
	}
}
