package mux

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// BenchmarkStreamOpen measures open + 64-byte round trip + close over one
// session over loopback TLS:
//
//	yamux   bare yamux streams echoed by the server (the floor)
//	client  Client.Open + ServeStream + a TCP echo backend
func BenchmarkStreamOpen(b *testing.B) {
	msg := make([]byte, 64)
	b.Run("yamux", func(b *testing.B) {
		cs, ss, _ := sessionPair(b, true)
		defer echoStreams(ss)()
		b.ReportAllocs()
		buf := make([]byte, 64)
		for b.Loop() {
			st, err := cs.OpenStream()
			if err != nil {
				b.Fatal(err)
			}
			st.Write(msg)
			if _, err := io.ReadFull(st, buf); err != nil {
				b.Fatal(err)
			}
			st.Close()
		}
	})
	b.Run("client", func(b *testing.B) {
		be := startBackend(b, func(c *net.TCPConn) { io.Copy(c, c) })
		g := startGateway(b, true, routeTo(map[string]string{"echo": be.addr()}))
		c := NewClient(ClientConfig{Dial: g.dialer(new(atomic.Int32)), Yamux: testConfig()})
		defer c.Close()
		b.ReportAllocs()
		buf := make([]byte, 64)
		for b.Loop() {
			st, err := c.Open(context.Background(), "echo")
			if err != nil {
				b.Fatal(err)
			}
			st.Write(msg)
			if _, err := io.ReadFull(st, buf); err != nil {
				b.Fatal(err)
			}
			st.Close()
		}
	})
}

// echoStreams echoes every stream accepted on ss until stop is called,
// which closes ss and waits for the echoes to end.
func echoStreams(ss *yamux.Session) (stop func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			st, err := ss.AcceptStream()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(st, st)
				st.Close()
			})
		}
	})
	return func() {
		ss.Close()
		wg.Wait()
	}
}

// wraps are the ways to put a connection under a yamux session that the
// benchmarks compare.
var wraps = []struct {
	name string
	wrap func(net.Conn) net.Conn
}{
	{"plain", nil},
	{"batched", sessionConn},
}

// BenchmarkStreamOpenParallel measures open + 64-byte round trip + close
// over one TLS session from GOMAXPROCS×8 goroutines, bare yamux streams
// echoed by the server, with each way of wrapping the connection.
func BenchmarkStreamOpenParallel(b *testing.B) {
	for _, w := range wraps {
		b.Run(w.name, func(b *testing.B) {
			cs, ss, _ := sessionPairOpts(b, true, w.wrap)
			defer echoStreams(ss)()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				msg, buf := make([]byte, 64), make([]byte, 64)
				for pb.Next() {
					st, err := cs.OpenStream()
					if err != nil {
						b.Error(err)
						return
					}
					st.Write(msg)
					if _, err := io.ReadFull(st, buf); err != nil {
						b.Error(err)
						return
					}
					st.Close()
				}
			})
		})
	}
}

// BenchmarkPingPong measures a 64-byte round trip on an open stream, with
// each way of wrapping the connection on both ends.
func BenchmarkPingPong(b *testing.B) {
	for _, w := range wraps {
		b.Run(w.name, func(b *testing.B) {
			c, s := tcpPair(b)
			var cc, sc net.Conn = c, s
			if w.wrap != nil {
				cc, sc = w.wrap(c), w.wrap(s)
			}
			cs, _ := yamux.Client(cc, testConfig())
			ss, _ := yamux.Server(sc, testConfig())
			defer cs.Close()
			defer ss.Close()
			a, z := streamPair(b, cs, ss)
			var wg sync.WaitGroup
			defer wg.Wait()
			wg.Go(func() { io.Copy(z, z); z.Close() })
			defer a.Close()
			msg, buf := make([]byte, 64), make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				a.Write(msg)
				if _, err := io.ReadFull(a, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPipe measures bulk throughput through Pipe: tcp is TCP to TCP
// (the direct-mode path), stream is a yamux stream over TLS to TCP (the
// gateway path), stream-batched the same with SessionConn on both ends of
// the session (as the gateway and the client run), stream-noshrink the same without Stream.Shrink before
// idle reads, and stream-iocopy io.Copy on the same path as a baseline.
func BenchmarkPipe(b *testing.B) {
	const chunk = 256 << 10
	run := func(b *testing.B, src io.Writer, sink net.Conn) {
		data := make([]byte, chunk)
		got := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, sink)
			got <- n
		}()
		b.SetBytes(chunk)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.Write(data); err != nil {
				b.Fatal(err)
			}
		}
		halfClose(src.(net.Conn))
		if n := <-got; n != int64(b.N)*chunk {
			b.Fatalf("sink got %d bytes, want %d", n, int64(b.N)*chunk)
		}
		sink.Close() // ends the other direction of the Pipe

	}
	b.Run("tcp", func(b *testing.B) {
		a, a2 := tcpPair(b)
		b2, z := tcpPair(b)
		done := make(chan struct{})
		go func() { Pipe(a2, b2); close(done) }()
		run(b, a, z)
		a.Close()
		<-done
	})
	for _, mode := range []string{"stream", "stream-batched", "stream-noshrink", "stream-iocopy"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "stream-noshrink" {
				shrinkIdle = false
				defer func() { shrinkIdle = true }()
			}
			var wrap func(net.Conn) net.Conn
			if mode == "stream-batched" {
				wrap = sessionConn
			}
			cs, ss, _ := sessionPairOpts(b, true, wrap)
			a, s := streamPair(b, cs, ss)
			tcp, z := tcpPair(b)
			done := make(chan struct{})
			go func() {
				if mode != "stream-iocopy" {
					Pipe(s, tcp)
				} else {
					io.Copy(tcp, s)
					tcp.CloseWrite()
				}
				close(done)
			}()
			run(b, a, z)
			<-done
			a.Close()
		})
	}
}

// BenchmarkIdleStreamMemory reports the memory held per idle piped stream
// on the gateway side (server stream, ServeStream and Pipe goroutines,
// backend conn; the client's bare stream and the backend's accepted conn
// are counted too, so it is an upper bound), after 64 KiB went each way.
func BenchmarkIdleStreamMemory(b *testing.B) {
	const streams = 500
	// One measurement, whatever -benchtime says: the setup is the costly
	// part and the result is a size, not a time.
	heap, stack := idleStreamMemory(b, streams)
	for b.Loop() {
	}
	b.ReportMetric(heap+stack, "B/stream")
	b.ReportMetric(heap, "heap-B/stream")
	b.ReportMetric(stack, "stack-B/stream")
}

func idleStreamMemory(tb testing.TB, streams int) (heap, stack float64) {
	cs, ss, _ := sessionPair(tb, false)
	// Backend: accept and hold connections, echo 64 KiB once per conn.
	ln := listen(tb, "tcp", "127.0.0.1:0")
	var held []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 64<<10)
				io.ReadFull(c, buf)
				c.Write(buf)
			})
		}
	})
	decide := routeTo(map[string]string{"b": ln.Addr().String()})
	wg.Go(func() {
		for {
			ys, err := ss.AcceptStream()
			if err != nil {
				return
			}
			wg.Go(func() { ServeStream(Wrap(ys), 5*time.Second, decide) })
		}
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]*Stream, streams)
	payload := make([]byte, 64<<10)
	buf := make([]byte, 64<<10)
	for i := range clients {
		ys, err := cs.OpenStream()
		if err != nil {
			tb.Fatal(err)
		}
		st := Wrap(ys)
		WriteRequest(st, Request{Route: "b"})
		if resp, err := ReadResponse(st); err != nil || resp.Status != StatusOK {
			tb.Fatalf("stream %d: %+v %v", i, resp, err)
		}
		st.Write(payload)
		if _, err := io.ReadFull(st, buf); err != nil {
			tb.Fatal(err)
		}
		st.Stream.Shrink() // the client's receive buffer is not the gateway's cost
		clients[i] = st
	}
	time.Sleep(idleShrinkDelay + 200*time.Millisecond) // let every pipe go idle
	for range 4 {                                      // the second empties the pool's victim cache; later ones shrink stacks
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	heap = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(streams)
	stack = float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(streams)
	for _, st := range clients {
		st.Close()
	}
	ln.Close()
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
	cs.Close()
	ss.Close()
	wg.Wait()
	return heap, stack
}

// BenchmarkRoundTrip measures a 64-byte round trip on loopback TLS, the
// floor (tls: the bytes on the TLS connection itself, echoed by io.Copy),
// against the same on a stream of a session over that kind of connection,
// with SessionConn under both ends as the gateway and the client run it
// (mux), and with the echo through Pipe to a TCP echo server as the
// gateway forwards a stream (mux-pipe; its floor is tls-pipe, the direct
// mode's path). Compare mux with tls and mux-pipe with tls-pipe.
func BenchmarkRoundTrip(b *testing.B) {
	run := func(b *testing.B, c net.Conn) {
		msg, buf := make([]byte, 64), make([]byte, 64)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	// tcpEcho returns a TCP connection whose peer echoes with io.Copy.
	tcpEcho := func(b *testing.B) *net.TCPConn {
		c, s := tcpPair(b)
		go func() { io.Copy(s, s); s.Close() }()
		return c
	}
	b.Run("tls", func(b *testing.B) {
		c, s := tlsPair(b)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { io.Copy(s, s); s.Close() })
		defer c.Close()
		run(b, c)
	})
	b.Run("mux", func(b *testing.B) {
		cs, ss, _ := sessionPairOpts(b, true, sessionConn)
		a, z := streamPair(b, cs, ss)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { io.Copy(z, z); z.Close() })
		defer a.Close()
		run(b, a)
	})
	b.Run("tls-pipe", func(b *testing.B) {
		c, s := tlsPair(b)
		done := make(chan struct{})
		go func() { Pipe(s, tcpEcho(b)); close(done) }()
		defer func() { c.Close(); <-done }()
		run(b, c)
	})
	b.Run("mux-pipe", func(b *testing.B) {
		cs, ss, _ := sessionPairOpts(b, true, sessionConn)
		a, z := streamPair(b, cs, ss)
		done := make(chan struct{})
		go func() { Pipe(z, tcpEcho(b)); close(done) }()
		defer func() { a.Close(); <-done }()
		run(b, a)
	})
}
