package conn

import (
	"net/netip"
	"testing"
	"time"
)

func TestHolds(t *testing.T) {
	h := NewHolds(time.Second, 8*time.Second)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0)
	if _, held := h.Held(a, t0); held {
		t.Fatal("held before any abuse")
	}
	for i, want := range []time.Duration{1, 2, 4, 8, 8} {
		now := t0.Add(time.Duration(i) * 3 * time.Second)
		if d := h.Hold(a, now); d != want*time.Second {
			t.Fatalf("abuse %d: held %v, want %v (doubling up to the max)", i+1, d, want*time.Second)
		}
		if until, held := h.Held(a, now.Add(want*time.Second-time.Millisecond)); !held || !until.Equal(now.Add(want*time.Second)) {
			t.Fatalf("abuse %d: not held until %v (%v, %v)", i+1, now.Add(want*time.Second), until, held)
		}
		if _, held := h.Held(b, now); held {
			t.Fatal("another address is held")
		}
	}
	// IPv4-mapped IPv6 is the same address.
	if _, held := h.Held(netip.MustParseAddr("::ffff:192.0.2.1"), t0.Add(12*time.Second+time.Millisecond)); !held {
		t.Error("the IPv4-mapped form of a held address is not held")
	}
	// After the hold, free; after MaxHold without abuse, forgiven.
	last := t0.Add(12 * time.Second)
	if _, held := h.Held(a, last.Add(8*time.Second)); held {
		t.Error("still held after its hold")
	}
	if h.Len() != 0 {
		t.Errorf("%d addresses remembered after MaxHold without abuse, want 0", h.Len())
	}
	if d := h.Hold(a, last.Add(9*time.Second)); d != time.Second {
		t.Errorf("a forgiven address's next hold is %v, want the base 1s", d)
	}
	var none *Holds = NewHolds(0, time.Minute)
	if none != nil || none.Hold(a, t0) != 0 || none.Len() != 0 {
		t.Error("NewHolds(0, ...) holds")
	}
	if _, held := none.Held(a, t0); held {
		t.Error("nil Holds holds")
	}
}

// TestHoldsBounded: at most maxHolds addresses; when full, the hold that
// ends soonest goes.
func TestHoldsBounded(t *testing.T) {
	h := NewHolds(time.Second, time.Minute)
	t0 := time.Unix(1000, 0)
	base := netip.MustParseAddr("2001:db8::").As16()
	for i := range maxHolds + 10 {
		a := base
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		h.Hold(netip.AddrFrom16(a), t0.Add(time.Duration(i)*time.Microsecond))
	}
	if h.Len() != maxHolds {
		t.Fatalf("%d addresses kept, want at most %d", h.Len(), maxHolds)
	}
	if _, held := h.Held(netip.MustParseAddr("2001:db8::"), t0); held {
		t.Error("the hold ending soonest was kept over newer ones")
	}
}
