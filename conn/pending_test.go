package conn_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// fakeConn records whether it was closed; Pending only ever closes the
// connections it holds.
type fakeConn struct {
	net.Conn
	closed bool
}

func (c *fakeConn) Close() error { c.closed = true; return nil }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestPendingReplacesTheOldestSilentOfTheSource(t *testing.T) {
	p := conn.NewPending(conn.PendingConfig{Max: 100, PerAddr: 3, PerPrefix: 5})
	var cs []*fakeConn
	var ts []*conn.Ticket
	add := func(a string) (*conn.Ticket, *fakeConn, error) {
		c := &fakeConn{}
		tk, err := p.Add(c, addr(a))
		if err == nil {
			cs, ts = append(cs, c), append(ts, tk)
		}
		return tk, c, err
	}
	for range 3 {
		if _, _, err := add("10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	ts[1].Spoke() // the second one sent its ClientHello: no longer replaceable
	// A fourth from the same address replaces the oldest silent one (the first).
	if _, _, err := add("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if !cs[0].closed || !ts[0].Evicted() {
		t.Fatalf("the oldest silent connection was not replaced: closed=%v evicted=%v", cs[0].closed, ts[0].Evicted())
	}
	if cs[1].closed || cs[2].closed || cs[3].closed {
		t.Fatal("a connection other than the oldest silent one was closed")
	}
	// Again: now the third is the oldest silent one.
	if _, _, err := add("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if !cs[2].closed || cs[1].closed {
		t.Fatal("want the third (oldest silent) replaced, not the one that spoke")
	}
	// Every one left has spoken: the next from that address is refused.
	for _, tk := range ts[3:] {
		tk.Spoke()
	}
	_, c, err := add("10.0.0.1")
	var full *conn.PendingFullError
	if !errors.As(err, &full) || full.Group != "source address" || full.Cap != 3 || c.closed {
		t.Fatalf("err = %v (closed %v), want a source address refusal that leaves the conn to the caller", err, c.closed)
	}
	// Another address of the same /24 still gets in, up to the network cap:
	// 3 pending from .1, 2 more from .2 fill the /24's 5.
	for range 2 {
		if _, _, err := add("10.0.0.2"); err != nil {
			t.Fatal(err)
		}
	}
	// A third from .2 is over the /24 cap: it replaces the oldest silent
	// one of the network, the first from .2.
	n := len(cs)
	if _, _, err := add("10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if !cs[n-2].closed {
		t.Fatal("the oldest silent connection of the network was not replaced")
	}
	// A different /24 is not affected.
	if _, _, err := add("10.0.1.1"); err != nil {
		t.Fatal(err)
	}
	got := p.Counts()
	if got.Pending != 6 || got.Evicted != 3 || got.Refused != 1 {
		t.Fatalf("counts %+v, want 6 pending, 3 evicted, 1 refused", got)
	}
	for _, tk := range ts {
		tk.Done()
		tk.Done() // idempotent
	}
	if got := p.Counts(); got.Pending != 0 {
		t.Fatalf("%d pending after every Done, want 0", got.Pending)
	}
}

func TestPendingServerCapAndIPv6Networks(t *testing.T) {
	p := conn.NewPending(conn.PendingConfig{Max: 4, PerAddr: 10, PerPrefix: 2})
	var cs []*fakeConn
	for _, a := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:2::1", "2001:db8:0:3::1"} {
		c := &fakeConn{}
		if _, err := p.Add(c, addr(a)); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		cs = append(cs, c)
	}
	// A third from 2001:db8:0:1::/64 replaces the first of that /64.
	if _, err := p.Add(&fakeConn{}, addr("2001:db8:0:1::3")); err != nil {
		t.Fatal(err)
	}
	if !cs[0].closed || cs[1].closed {
		t.Fatal("want the oldest of the /64 replaced")
	}
	// The server is full (4): a newcomer from a fresh network replaces the
	// oldest silent connection of the server, the second.
	if _, err := p.Add(&fakeConn{}, addr("2001:db8:0:9::1")); err != nil {
		t.Fatal(err)
	}
	if !cs[1].closed || cs[2].closed {
		t.Fatal("want the oldest silent connection of the server replaced")
	}
	if got := p.Counts(); got.Pending != 4 || got.Evicted != 2 {
		t.Fatalf("counts %+v, want 4 pending and 2 evicted", got)
	}
}

func TestReadHello(t *testing.T) {
	p := testpki.New(t)
	t.Run("silent", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		start := time.Now()
		_, _, err := conn.ReadHello(a, 100*time.Millisecond, time.Second, nil)
		if !errors.Is(err, conn.ErrSilent) {
			t.Fatalf("err = %v, want ErrSilent", err)
		}
		if el := time.Since(start); el < 90*time.Millisecond {
			t.Fatalf("gave up after %v, before the hello timeout", el)
		}
	})
	t.Run("trickle is bounded from the first byte", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go func() { // a header, then a byte every 100 ms: never a whole record
			hdr := []byte{0x16, 0x03, 0x01, 0x01, 0x00}
			for i := range 20 {
				if _, err := b.Write([]byte{hdr[min(i, 4)]}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		start := time.Now()
		_, deadline, err := conn.ReadHello(a, time.Second, 300*time.Millisecond, nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want the handshake deadline", err)
		}
		if el := time.Since(start); el > time.Second || deadline.Sub(start) > 400*time.Millisecond {
			t.Fatalf("a trickler held on for %v (deadline %v after the start): each byte reset the deadline",
				el, deadline.Sub(start))
		}
	})
	t.Run("a real ClientHello is replayed to the handshake", func(t *testing.T) {
		srvConn, cliConn := net.Pipe()
		defer srvConn.Close()
		done := make(chan error, 1)
		go func() {
			defer cliConn.Close()
			c := tls.Client(cliConn, &tls.Config{RootCAs: p.CA.Pool(), ServerName: "localhost"})
			_, err := c.Write([]byte("ping"))
			done <- err
		}()
		hc, _, err := conn.ReadHello(srvConn, time.Second, 5*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.LoadX509KeyPair(p.Server.Cert, p.Server.Key)
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Server(hc, &tls.Config{Certificates: []tls.Certificate{cert}})
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v; want ping through a handshake over the replayed hello", buf, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("not TLS is left to the handshake", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { _, _ = b.Write([]byte("GET / HTTP/1.0\r\n\r\n")); b.Close() }()
		hc, _, err := conn.ReadHello(a, time.Second, time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(hc)
		if !bytes.Equal(got, []byte("GET / HTTP/1.0\r\n\r\n")) {
			t.Fatalf("replayed %q, want every byte sent", got)
		}
	})
}

// FuzzReadHello: whatever a client sends, the connection ReadHello returns
// reads exactly those bytes, in order.
func FuzzReadHello(f *testing.F) {
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00, 'x'})
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff})
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	f.Add([]byte{0x16})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		a, b := net.Pipe()
		defer a.Close()
		go func() { _, _ = b.Write(data); b.Close() }()
		hc, _, err := conn.ReadHello(a, time.Second, time.Second, nil)
		if err != nil {
			// Only a record cut short by the end of the input fails.
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v for %x", err, data)
			}
			return
		}
		got, _ := io.ReadAll(hc)
		if !bytes.Equal(got, data) {
			t.Fatalf("replayed %x, want %x", got, data)
		}
	})
}
