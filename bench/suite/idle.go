package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/bench/proc"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// memResult is the gateway's resident memory with n idle streams.
type memResult struct {
	route          string
	backend        string
	streams        int
	before, with   int64 // VmRSS, bytes
	perStream      float64
	openTime       time.Duration
	cpuPerStreamUS float64
}

// idleMemory starts a fresh gateway, opens n streams to route over one
// session, moves one byte each way on each, and reads the gateway's VmRSS
// before and with them.
func (s *suite) idleMemory(ctx context.Context, route string, n int) (memResult, error) {
	m := memResult{route: route, streams: n, backend: "TCP echo backend"}
	if route == "becho" {
		m.backend = "builtin:echo"
	}
	gw, err := startGateway(s.exe("gateway"), s.dir, s.files, s.back, "warn", "gateway-idle-"+route)
	if err != nil {
		return m, err
	}
	defer gw.proc.stop()
	creds, err := conn.NewClientCreds(conn.ClientFiles{Cert: s.files.clientCert, Key: s.files.clientKey, CA: s.files.ca})
	if err != nil {
		return m, err
	}
	d, err := tunnel.NewDialer(tunnel.Options{Gateways: []string{gw.addr("echo")}, Creds: creds, ServerName: "localhost",
		Log: zerolog.Nop()})
	if err != nil {
		return m, err
	}
	defer d.Close()
	oneByte := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return err
		}
		return c.SetDeadline(time.Time{})
	}
	// The session, and one stream, before the baseline reading.
	first, err := d.Dial(ctx, route)
	if err != nil {
		return m, err
	}
	if err := oneByte(first); err != nil {
		return m, err
	}
	first.Close()
	time.Sleep(time.Second)
	pid := gw.proc.pid()
	if m.before, err = proc.RSS(pid); err != nil {
		return m, err
	}
	cpu0, err := proc.CPU(pid)
	if err != nil {
		return m, err
	}

	s.logf("idle memory: opening %d streams through %s", n, m.backend)
	streams := make([]net.Conn, n)
	defer func() {
		for _, c := range streams {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := d.Dial(ctx, route)
				if err == nil {
					streams[i] = c
					err = oneByte(c)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("stream %d of %d: %w", i+1, n, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	m.openTime = time.Since(start)
	if firstErr != nil {
		return m, firstErr
	}
	if err := ctx.Err(); err != nil {
		return m, err
	}
	cpu1, err := proc.CPU(pid)
	if err != nil {
		return m, err
	}
	m.cpuPerStreamUS = float64((cpu1 - cpu0).Microseconds()) / float64(n)
	time.Sleep(2 * time.Second) // let the gateway settle
	if m.with, err = proc.RSS(pid); err != nil {
		return m, err
	}
	m.perStream = float64(m.with-m.before) / float64(n)
	s.logf("idle memory through %s: %d streams, RSS %.1f -> %.1f MiB, %.1f KiB per stream",
		m.backend, n, float64(m.before)/(1<<20), float64(m.with)/(1<<20), m.perStream/1024)
	return m, nil
}
