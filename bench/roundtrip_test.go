package bench

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestRoundTripPeerResets: a large round trip (written while the echo is
// read) against a peer that resets the connection fails as one operation,
// with the write or the read phase, whichever failed first; the writer's
// error is read only after the writer is done (the race detector checks).
func TestRoundTripPeerResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const rounds = 20
	served := make(chan struct{})
	go func() {
		defer close(served)
		for range rounds {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 4096))
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close() // a reset: both directions of the client fail
		}
	}()
	msg, buf := make([]byte, 4<<20), make([]byte, 4<<20)
	for i := range rounds {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err = roundTrip(c, "gw", msg, buf)
		c.Close()
		var oe *opError
		if !errors.As(err, &oe) || (oe.phase != phaseWrite && oe.phase != phaseRead) {
			t.Fatalf("round %d: %v, want a write or read failure", i, err)
		}
	}
	<-served
}
