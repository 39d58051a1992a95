package mux

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// A request of exactly the probe's size (and of a pooled buffer's size),
// whose sender waits for the answer before sending more, must be forwarded
// at once: a reader that filled its buffer must not wait for more data
// before passing on what it has.
func TestPipeForwardsFullReadsAtOnce(t *testing.T) {
	for _, size := range []int{probeSize, BufferSize, probeSize + BufferSize} {
		app, front := tlsPair(t) // a TLS source: read through the probe
		back, be := tcpPair(t)
		done := startPipe(front, back)
		req := bytes.Repeat([]byte{'q'}, size)
		for round := range 3 {
			if _, err := app.Write(req); err != nil {
				t.Fatal(err)
			}
			be.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, size)
			if _, err := io.ReadFull(be, got); err != nil {
				t.Fatalf("size %d round %d: the backend got no complete request: %v", size, round, err)
			}
			if _, err := be.Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			app.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(app, make([]byte, 2)); err != nil {
				t.Fatalf("size %d round %d: no answer: %v", size, round, err)
			}
		}
		app.Close()
		be.Close()
		<-done
	}
}
