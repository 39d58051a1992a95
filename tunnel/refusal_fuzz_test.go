package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"

	"github.com/portcullis-gw/portcullis/mux"
)

// FuzzRefusalReaders feeds arbitrary client bytes to each style's reader:
// none panics, none reads past its bounds, and an answer is always in the
// style's form.
func FuzzRefusalReaders(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08\x04\xd2\x16\x2f\x00\x00\x00\x0a\x00\x03\x00\x00a\x00"))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if a, err := postgresRefusal(bufio.NewReader(bytes.NewReader(in)), io.Discard, mux.StatusForbidden, "r"); err == nil && (len(a) < 6 || a[0] != 'E') {
			t.Fatalf("postgres answer %q", a)
		}
		if a, err := redisRefusal(bufio.NewReader(bytes.NewReader(in)), mux.StatusForbidden, "r"); err == nil && !bytes.HasPrefix(a, []byte("-ERR portcullis: forbidden: r\r\n")) {
			t.Fatalf("redis answer %q", a)
		}
		if a, err := httpRefusal(bufio.NewReader(bytes.NewReader(in)), mux.StatusForbidden, "r"); err == nil && !bytes.HasPrefix(a, []byte("HTTP/1.1 502 ")) {
			t.Fatalf("http answer %q", a)
		}
	})
}

// TestProcAddr reads addresses as /proc/net/tcp and tcp6 print them.
func TestProcAddr(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the cases are written for a little-endian machine")
	}
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"0200007F:0035":                         "127.0.0.2:53",
		"00000000000000000000000001000000:0016": "[::1]:22",
		"0000000000000000FFFF00000100007F:01BB": "127.0.0.1:443",
	} {
		got, ok := parseProcAddr(in)
		if !ok || got != netip.MustParseAddrPort(want) {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
}
