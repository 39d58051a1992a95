package conn_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portcullis-gw/portcullis/conn"
)

// A connection whose first bytes wait unread in its socket buffer (its
// goroutine has not run yet) is passed over for a silent one; once a byte
// was read from it, it takes its turn again.
func TestPendingPassesOverUnreadHello(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func(hello bool) (server net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if hello {
			if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil {
				t.Fatal(err)
			}
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	p := conn.NewPending(conn.PendingConfig{PerAddr: 2})
	spoke := pair(true)
	tSpoke, err := p.Add(spoke, addr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	silent := pair(false)
	tSilent, err := p.Add(silent, addr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	waitUnread(t, spoke)
	if _, err := p.Add(pair(false), addr("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if tSpoke.Evicted() || !tSilent.Evicted() {
		t.Fatalf("evicted: with bytes waiting %v, silent %v; want only the silent one", tSpoke.Evicted(), tSilent.Evicted())
	}
	// Once its first byte was read, a connection is in turn like any
	// other that has not completed its ClientHello.
	tSpoke.Heard()
	if _, err := p.Add(pair(false), addr("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if !tSpoke.Evicted() {
		t.Fatal("a connection that was heard from, with bytes waiting, was passed over")
	}
}

// waitUnread waits until bytes sent to c are in its socket buffer.
func waitUnread(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for range 500 {
		n := 0
		_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the bytes never arrived")
}
