package mux

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

func TestConfig(t *testing.T) {
	c := Config(zerolog.Nop())
	if err := yamux.VerifyConfig(c); err != nil {
		t.Fatalf("Config does not verify: %v", err)
	}
	if c.AcceptBacklog != 1024 || c.KeepAliveInterval != 15*time.Second || !c.EnableKeepAlive ||
		c.MaxStreamWindowSize != 4<<20 || c.LogOutput != nil || c.Logger == nil {
		t.Fatalf("Config = %+v", c)
	}
	if Config(zerolog.Nop()) == c {
		t.Fatal("Config returned a shared value")
	}
}

func TestYamuxLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := Config(zerolog.New(&buf).Level(zerolog.DebugLevel)).Logger
	l.Printf("[ERR] yamux: Failed to read header: %v", "boom")
	l.Println("[WARN] yamux: frame for missing stream")
	l.Print("[DEBUG] yamux: chatter")
	l.Print("no prefix")
	type line struct{ Level, Message, Component string }
	var got []line
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		got = append(got, l)
	}
	want := []line{
		{"error", "Failed to read header: boom", "yamux"},
		{"warn", "frame for missing stream", "yamux"},
		{"debug", "chatter", "yamux"},
		{"debug", "no prefix", "yamux"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// recConn records each Write.
type recConn struct {
	net.Conn
	writes [][]byte
}

func (c *recConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func hdr(typ byte, length uint32) []byte {
	h := make([]byte, 12)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:8], 7)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func TestCoalesce(t *testing.T) {
	rc := &recConn{}
	c := Coalesce(rc)
	write := func(p []byte) {
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	write(hdr(0, 5)) // data header, small body: held
	if len(rc.writes) != 0 {
		t.Fatal("the header of a small data frame was not held")
	}
	write([]byte("hello"))
	write(hdr(1, 1<<20))         // window update: passes
	write(hdr(0, coalesceMax+1)) // large data frame header: passes
	write(make([]byte, coalesceMax+1))
	write(hdr(0, 3)) // held, then a write of another size: both go out
	write([]byte("toolong"))

	want := [][]byte{
		append(hdr(0, 5), "hello"...),
		hdr(1, 1<<20),
		hdr(0, coalesceMax+1),
		make([]byte, coalesceMax+1),
		hdr(0, 3),
		[]byte("toolong"),
	}
	if len(rc.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(rc.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(rc.writes[i], want[i]) {
			t.Errorf("write %d = %x..., want %x...", i, rc.writes[i][:min(20, len(rc.writes[i]))], want[i][:min(20, len(want[i]))])
		}
	}
}

// TestCoalesceSession runs streams of several sizes over a session
// coalesced on both ends.
func TestCoalesceSession(t *testing.T) {
	be := startBackend(t, echo)
	g := startGateway(t, true, routeTo(map[string]string{"echo": be.addr()}))
	inner := g.dialer(new(atomic.Int32))
	c := NewClient(ClientConfig{Dial: inner, Yamux: testConfig(), Coalesce: true})
	defer c.Close()
	for _, size := range []int{1, 100, 16 << 10, 200 << 10} {
		st, err := c.Open(t.Context(), "echo")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, st, strings.Repeat("z", size))
		st.Close()
	}
}
