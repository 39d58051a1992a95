package mux_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"

	"github.com/portcullis-gw/portcullis/mux"
)

func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestEchoAndDiscard(t *testing.T) {
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)

	c, s := tcpPair(t)
	done := make(chan int64, 1)
	go func() { n, _ := mux.Echo(s); done <- n }()
	go func() { _, _ = c.Write(data); _ = c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo: %d bytes back (err %v), want the %d sent", len(got), err, len(data))
	}
	if n := <-done; n != int64(len(data)) {
		t.Fatalf("Echo counted %d bytes, want %d", n, len(data))
	}

	c, s = tcpPair(t)
	go func() { n, _ := mux.Discard(s); done <- n }()
	_, _ = c.Write(data)
	_ = c.CloseWrite()
	if n := <-done; n != int64(len(data)) {
		t.Fatalf("Discard counted %d bytes, want %d", n, len(data))
	}
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("Discard sent %d bytes back", len(b))
	}
}
