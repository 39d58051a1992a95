package conn

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want Rate
	}{
		{"0", Rate{}}, {"off", Rate{}}, {"20", Rate{20, 40}}, {"20:100", Rate{20, 100}},
		{"0.5:3", Rate{0.5, 3}}, {"0.1", Rate{0.1, 1}}, {"1.5", Rate{1.5, 3}}, {"1e3", Rate{1000, 2000}},
	}
	for _, c := range good {
		got, err := ParseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if again, err := ParseRate(got.String()); err != nil || again != got {
			t.Errorf("ParseRate(%q) (String of %q) = %+v, %v", got.String(), c.in, again, err)
		}
	}
	bad := []struct{ in, why string }{
		{"", "not a number"}, {"fast", "not a number"}, {"-1", "negative"}, {"NaN", "not a number"},
		{"Inf", "not a number"}, {"0x10", "not a number"}, {"1_000", "not a number"}, {"2e6", "over"},
		{"5:", "burst is not a whole number"}, {"5:x", "burst is not a whole number"}, {"5:0", "less than 1"},
		{"5:-2", "less than 1"}, {"5:2000000", "burst is over"}, {"0:5", "means nothing"}, {"5:3:1", "not a whole number"},
	}
	for _, c := range bad {
		_, err := ParseRate(c.in)
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseRate(%q) = %v; want an error saying %q", c.in, err, c.why)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0", "20", "20:100", "0.5:3", "1e3", "-1", "5:", "NaN", "off"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if r != (Rate{}) {
				t.Fatalf("ParseRate(%q) failed with a non-zero Rate %+v", s, r)
			}
			return
		}
		if !r.IsZero() && (r.Burst < 1 || r.PerSec > maxRate || r.Burst > maxRate) {
			t.Fatalf("ParseRate(%q) = %+v: out of bounds", s, r)
		}
		if again, err := ParseRate(r.String()); err != nil || again != r {
			t.Fatalf("ParseRate(String(%+v)) = %+v, %v", r, again, err)
		}
	})
}

func TestSourceRates(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := NewSourceRates(SourceRatesConfig{PerAddr: Rate{PerSec: 1, Burst: 3}, PerPrefix: Rate{PerSec: 2, Burst: 5}})
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.1")
	for i := range 3 {
		if ok, scope := s.Allow(a, now); !ok {
			t.Fatalf("token %d of a burst of 3 refused (%s)", i+1, scope)
		}
	}
	if ok, scope := s.Allow(a, now); ok || scope != "source address" {
		t.Fatalf("4th at once: %v %q; want refused by the source address", ok, scope)
	}
	// The network has 2 tokens left: b takes them, then is refused by the
	// network, which must not have cost b's own bucket anything.
	for range 2 {
		if ok, _ := s.Allow(b, now); !ok {
			t.Fatal("b refused while its network had tokens")
		}
	}
	if ok, scope := s.Allow(b, now); ok || scope != "source network" {
		t.Fatalf("b over its network: %v %q", ok, scope)
	}
	if ok, _ := s.Allow(c, now); !ok {
		t.Fatal("another network refused")
	}
	// Half a second later the network has one token back (2/s), b's own
	// bucket still one left of 3: the network's refusal gave b's back.
	later := now.Add(500 * time.Millisecond)
	if ok, scope := s.Allow(b, later); !ok {
		t.Fatalf("b refused after its network refilled (%s)", scope)
	}
	if ok, _ := s.Allow(a, later); ok {
		t.Fatal("a got a token with half a token in its bucket")
	}
	if ok, _ := s.Allow(a, now.Add(1100*time.Millisecond)); !ok {
		t.Fatal("a refused after a second (1/s)")
	}
	var nilRates *SourceRates
	if ok, _ := nilRates.Allow(a, now); !ok {
		t.Fatal("a nil SourceRates refused")
	}
	if NewSourceRates(SourceRatesConfig{}) != nil {
		t.Fatal("no limit set, yet buckets")
	}
}

func TestSourceRatesBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := NewSourceRates(SourceRatesConfig{PerAddr: Rate{PerSec: 1, Burst: 1}, MaxTracked: 100})
	for i := range 1000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := s.Allow(addr, now.Add(time.Duration(i)*time.Microsecond)); !ok {
			t.Fatalf("source %d refused on its first connection", i)
		}
		if n := s.addrs.tracked(); n > 100 {
			t.Fatalf("%d buckets kept, over MaxTracked 100", n)
		}
	}
	// A source whose bucket was in use recently is still limited.
	last := netip.AddrFrom4([4]byte{10, 0, 3, 231})
	if ok, _ := s.Allow(last, now.Add(time.Millisecond)); ok {
		t.Fatal("the most recent source got a second token at once")
	}
}
