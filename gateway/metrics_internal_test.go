package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkStreamMetrics measures what the metrics add to one carried
// stream: the route's open counter and gauge, the dial and stream
// histograms and the byte counters, through the instruments bound at
// policy load. Compare with BenchmarkStreamOpen's time per stream.
func BenchmarkStreamMetrics(b *testing.B) {
	m, err := newMetrics(&Server{}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	m.mu.Lock()
	rm := m.route("echo")
	m.mu.Unlock()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			rm.dial.Observe(time.Since(start).Seconds())
			rm.opening()
			rm.closed(64, 64, time.Since(start))
		}
	})
}

func TestHandshakeClass(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errNoHandshakeSlot, "overloaded"},
		{&refusal{v: verdict{status: mux.StatusForbidden}}, "refused"},
		{fmt.Errorf("tls: %w", fmt.Errorf("%w: serial 01", conn.ErrRevoked)), "revoked"},
		{context.DeadlineExceeded, "timeout"},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "not_tls"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "bad_certificate"},
		{errors.New("tls: client didn't provide a certificate"), "bad_certificate"},
		{io.EOF, "other"},
		{errors.New("remote error: tls: unknown certificate authority"), "other"},
	} {
		if got := hsClassNames[handshakeClass(c.err)]; got != c.want {
			t.Errorf("handshakeClass(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
