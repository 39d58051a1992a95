package tunnel

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/portcullis-gw/portcullis/internal/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// forwardMetrics are a Forwarder's instruments, bound per route of its
// locals when it is made: a stream touches no label lookup.
type forwardMetrics struct {
	streams, failed, bytesOut, bytesIn *prometheus.CounterVec
	open                               *prometheus.GaugeVec
	routes                             map[string]*routeMetrics
	failedBy                           map[string]prometheus.Counter
}

type routeMetrics struct {
	streams, bytesOut, bytesIn prometheus.Counter
	open                       prometheus.Gauge
}

func newForwardMetrics(locals []Local) *forwardMetrics {
	m := &forwardMetrics{
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_tunnel_streams_total",
			Help: "Local connections carried through a stream, by route."}, []string{"route"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_tunnel_stream_failures_total",
			Help: "Local connections closed because no stream could be opened (gateway unreachable or refusing), by route."}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_tunnel_sent_bytes_total",
			Help: "Bytes from local connections to the gateway, by route, counted when a stream ends."}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portcullis_tunnel_received_bytes_total",
			Help: "Bytes from the gateway to local connections, by route, counted when a stream ends."}, []string{"route"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portcullis_tunnel_streams_open",
			Help: "Streams open now, by route."}, []string{"route"}),
		routes: map[string]*routeMetrics{}, failedBy: map[string]prometheus.Counter{},
	}
	for _, l := range locals {
		if m.routes[l.Route] != nil {
			continue
		}
		m.routes[l.Route] = &routeMetrics{streams: m.streams.WithLabelValues(l.Route), bytesOut: m.bytesOut.WithLabelValues(l.Route),
			bytesIn: m.bytesIn.WithLabelValues(l.Route), open: m.open.WithLabelValues(l.Route)}
		m.failedBy[l.Route] = m.failed.WithLabelValues(l.Route)
	}
	return m
}

// opened counts a stream of one of the locals' routes.
func (m *forwardMetrics) opened(route string) *routeMetrics {
	rm := m.routes[route]
	rm.streams.Inc()
	rm.open.Inc()
	return rm
}

// closed counts a stream's end: out went to the gateway, in came back.
func (rm *routeMetrics) closed(out, in int64) {
	rm.open.Dec()
	rm.bytesOut.Add(float64(out))
	rm.bytesIn.Add(float64(in))
}

// dialerCollector reports the Dialer's session, the gateway in use and the
// client certificate's expiry, read at each scrape.
type dialerCollector struct{ d *Dialer }

var (
	descSessionUp = prometheus.NewDesc("portcullis_tunnel_session_up", "1 while a mux session to a gateway is up.", nil, nil)
	descSessions  = prometheus.NewDesc("portcullis_tunnel_sessions_total",
		"Mux sessions established (the first and each reconnect).", nil, nil)
	descGateway = prometheus.NewDesc("portcullis_tunnel_gateway_info",
		"The gateway of the session up now (its address as connected to); always 1.", []string{"gateway"}, nil)
	descCertExpiry = prometheus.NewDesc("portcullis_tunnel_client_cert_expiry_timestamp_seconds",
		"NotAfter of the client certificate loaded now.", nil, nil)
)

func (c dialerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessionUp, descSessions, descGateway, descCertExpiry} {
		ch <- d
	}
}

func (c dialerCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	up := 0.0
	if d.client != nil {
		if sess := d.client.Session(); sess != nil && !sess.IsClosed() {
			up = 1
			ch <- prometheus.MustNewConstMetric(descGateway, prometheus.GaugeValue, 1, sess.RemoteAddr().String())
		}
	}
	ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.CounterValue, float64(d.sessions.Load()))
	if st := d.opts.Creds.State(); st != nil && st.Cert.Leaf != nil {
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(st.Cert.Leaf.NotAfter.Unix()))
	}
}

// Register puts the forwarder's metrics and its Dialer's on reg: streams,
// failures, bytes and open streams by route, the session, the gateway in
// use, reconnects and the client certificate's expiry.
func (f *Forwarder) Register(reg prometheus.Registerer) error {
	m := f.m
	for _, c := range []prometheus.Collector{m.streams, m.failed, m.bytesOut, m.bytesIn, m.open, dialerCollector{f.d}} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering the tunnel's metrics: %w", err)
		}
	}
	return nil
}

// AdminHandler serves /healthz (the process is up) and /metrics: the
// forwarder's metrics (see Register), the build (portcullis_build_info)
// and the Go and process collectors, on a registry of its own.
func (f *Forwarder) AdminHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	info := version.Get()
	v := info.Version
	if v == "" {
		v = "(devel)"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "portcullis_build_info", Help: "The build: version, revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": v, "revision": info.Revision(), "goversion": info.Go}})
	build.Set(1)
	errs := []error{f.Register(reg)}
	for _, c := range []prometheus.Collector{build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, nil
}
