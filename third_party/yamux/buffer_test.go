package yamux

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestRecvBufferRandom writes frames of random sizes and reads them back in
// random pieces.
func TestRecvBufferRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var b recvBuffer
	var want, got []byte
	for i := 0; i < 300; i++ {
		n := rng.Intn(300 << 10)
		if rng.Intn(3) == 0 {
			n = rng.Intn(100)
		}
		frame := make([]byte, n)
		rng.Read(frame)
		want = append(want, frame...)
		if m, err := b.readFrom(bytes.NewReader(frame), n); m != n || err != nil {
			t.Fatalf("readFrom: %d, %v", m, err)
		}
		for rng.Intn(2) == 0 && b.Len() > 0 {
			p := make([]byte, rng.Intn(70<<10)+1)
			m := b.Read(p)
			got = append(got, p[:m]...)
		}
		if b.Len() != len(want)-len(got) {
			t.Fatalf("Len %d, want %d", b.Len(), len(want)-len(got))
		}
	}
	for b.Len() > 0 {
		p := make([]byte, 50<<10)
		got = append(got, p[:b.Read(p)]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("data differs")
	}
	if b.Cap() != 0 || b.reset() != 0 {
		t.Fatal("an empty buffer holds memory")
	}
}
