package logging

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(10, 3)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if ok, s := l.AllowAt(t0); !ok || s != 0 {
			t.Fatalf("event %d of the burst: ok=%v suppressed=%d, want true 0", i, ok, s)
		}
	}
	for i := range 5 {
		if ok, _ := l.AllowAt(t0); ok {
			t.Fatalf("event %d past the burst was allowed", i)
		}
	}
	// 100 ms later one token is back: the next event carries the count.
	if ok, s := l.AllowAt(t0.Add(100 * time.Millisecond)); !ok || s != 5 {
		t.Fatalf("after the refill: ok=%v suppressed=%d, want true 5", ok, s)
	}
	if ok, s := l.AllowAt(t0.Add(time.Second)); !ok || s != 0 {
		t.Fatalf("the count was not reset: ok=%v suppressed=%d", ok, s)
	}
}
