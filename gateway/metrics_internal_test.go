package gateway

import (
	"testing"
	"time"

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
