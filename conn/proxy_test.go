package conn_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/portcullis-gw/portcullis/conn"
)

// proxyPipe writes data to one end of a pipe and returns the other.
func proxyPipe(t *testing.T, data []byte, thenClose bool) net.Conn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() {
		_, _ = b.Write(data)
		if thenClose {
			b.Close()
		}
	}()
	return a
}

func v2Header(t *testing.T, src, dst string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadProxyHeader(t *testing.T) {
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name string
		head []byte
		want string
	}{
		{"v2 IPv4", v2Header(t, "192.0.2.7:40000", "10.0.0.1:8443"), "192.0.2.7:40000"},
		{"v2 IPv6", v2Header(t, "[2001:db8::7]:40000", "[2001:db8::1]:8443"), "[2001:db8::7]:40000"},
		{"v2 mapped IPv4 is IPv4", v2Header(t, "[::ffff:192.0.2.9]:1", "[::ffff:10.0.0.1]:2"), "192.0.2.9:1"},
		{"v1", []byte("PROXY TCP4 198.51.100.4 10.0.0.1 5555 8443\r\n"), "198.51.100.4:5555"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := proxyPipe(t, append(append([]byte(nil), tc.head...), hello...), true)
			src, rest, err := conn.ReadProxyHeader(c, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if src.String() != tc.want {
				t.Errorf("client %v, want %s", src, tc.want)
			}
			if ra := conn.RemoteAddrPort(rest); ra.String() != tc.want {
				t.Errorf("the replaying connection's RemoteAddr is %v, want the client %s", ra, tc.want)
			}
			got, _ := io.ReadAll(rest)
			if !bytes.Equal(got, hello) {
				t.Errorf("after the header: %x, want the ClientHello %x", got, hello)
			}
		})
	}
}

func TestReadProxyHeaderRefuses(t *testing.T) {
	big := v2Header(t, "192.0.2.7:1", "10.0.0.1:2", proxyproto.TLV{Type: 0xE0, Value: make([]byte, conn.MaxProxyHeader)})
	for _, tc := range []struct {
		name  string
		data  []byte
		close bool
		want  error
	}{
		{"no header (TLS straight away)", []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, true, conn.ErrNoProxyHeader},
		{"oversized", big, true, conn.ErrProxyHeaderTooLarge},
		{"v1 garbage", []byte("PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n"), true, conn.ErrProxyHeaderInvalid},
		{"v2 cut short", v2Header(t, "192.0.2.7:1", "10.0.0.1:2")[:20], true, io.ErrUnexpectedEOF},
		{"silent", nil, false, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := proxyPipe(t, tc.data, tc.close)
			_, _, err := conn.ReadProxyHeader(c, 200*time.Millisecond)
			if !errors.Is(err, tc.want) && !(tc.want == io.ErrUnexpectedEOF && errors.Is(err, io.EOF)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzReadProxyHeader: any input gives an address and the bytes after the
// header, or an error; never a panic, never more than the header read.
func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.4 10.0.0.1 5555 8443\r\nabc"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"))
	f.Add(append([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"), 192, 0, 2, 1, 10, 0, 0, 1, 0, 1, 0, 2))
	f.Add(append([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), 'x'))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { _, _ = b.Write(data); b.Close() }()
		src, rest, err := conn.ReadProxyHeader(a, time.Second)
		if err != nil {
			return
		}
		after, _ := io.ReadAll(rest)
		if !bytes.HasSuffix(data, after) {
			t.Fatalf("the bytes after the header (%x) are not the end of the input %x", after, data)
		}
		if len(data)-len(after) > conn.MaxProxyHeader {
			t.Fatalf("read a %d-byte header, over the %d bound", len(data)-len(after), conn.MaxProxyHeader)
		}
		_ = src
	})
}
