package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/version"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The server's metrics live in one registry per Server (Config.Registry or
// a private one): no package-level metric, no default registerer. Labels
// are bounded: route names of the policy (or "" for a stream that named
// none), statuses, reasons and kinds from fixed sets; never an identity or
// an address.

// Classes of handshake failures, the reason label of
// portcullis_handshake_failures_total.
const (
	hsTimeout        = iota // no complete handshake within --handshake-timeout
	hsNotTLS                // the first bytes were not a TLS handshake
	hsBadCertificate        // no client certificate, or one that does not verify
	hsRevoked               // the client certificate is on a loaded CRL
	hsRefused               // direct mode: authorization refused during the handshake
	hsOverloaded            // no handshake slot within the deadline
	hsOther                 // the client closed, sent an alert, or anything else
	hsClasses
)

var hsClassNames = [hsClasses]string{"timeout", "not_tls", "bad_certificate", "revoked", "refused", "overloaded", "other"}

// errNoHandshakeSlot is the failure of a connection that waited past its
// deadline for a handshake slot.
var errNoHandshakeSlot = errors.New("overloaded: too many handshakes in flight")

// errTrustChanged: a reload during the handshake left a client certificate
// that the new CAs do not verify.
var errTrustChanged = errors.New("the client certificate does not verify against the CAs reloaded during its handshake")

// handshakeClass sorts a handshake error into one of a few classes, for the
// metrics; handshakeReason has the words for the log.
func handshakeClass(err error) int {
	var rf *refusal
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.Is(err, errNoHandshakeSlot):
		return hsOverloaded
	case errors.As(err, &rf):
		return hsRefused
	case errors.Is(err, conn.ErrRevoked):
		return hsRevoked
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return hsTimeout
	case errors.As(err, &rh):
		return hsNotTLS
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &ci):
		return hsBadCertificate
	case err != nil && err.Error() == "tls: client didn't provide a certificate":
		// crypto/tls has no error value for it; its text is stable.
		return hsBadCertificate
	}
	return hsOther
}

// statusNames are the mux.Status names as label values.
var statusNames = [...]string{
	mux.StatusOK: "ok", mux.StatusUnknownRoute: "unknown_route", mux.StatusForbidden: "forbidden",
	mux.StatusUnreachable: "unreachable", mux.StatusOverloaded: "overloaded", mux.StatusBadRequest: "bad_request",
	mux.StatusShuttingDown: "shutting_down",
}

// Buckets, in seconds.
var (
	handshakeBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5ms to 16s
	dialBuckets      = prometheus.ExponentialBuckets(0.0001, 4, 10) // 0.1ms to 26s
	streamBuckets    = prometheus.ExponentialBuckets(0.01, 4, 12)   // 10ms to 11.6h
)

// metrics are a server's instruments. Those of a route are bound once per
// route name (routeMetrics) so that a stream touches no label lookup.
type metrics struct {
	reg *prometheus.Registry

	handshakeSeconds *prometheus.HistogramVec // mode
	handshakeFail    [hsClasses]prometheus.Counter
	dialSeconds      *prometheus.HistogramVec // route
	streamSeconds    *prometheus.HistogramVec // route
	streams          *prometheus.CounterVec   // route
	refusedVec       *prometheus.CounterVec   // route, status
	bytesIn          *prometheus.CounterVec   // route
	bytesOut         *prometheus.CounterVec   // route
	streamsOpen      *prometheus.GaugeVec     // route
	sessions         prometheus.Gauge
	reloads          prometheus.Counter
	reloadFailures   prometheus.Counter

	hsMux, hsDirect prometheus.Observer

	mu     sync.Mutex // guards routes
	routes map[string]*routeMetrics

	// the soonest NotAfter of a client certificate seen in a handshake
	// since New, in Unix seconds; 0 before the first
	clientNotAfter atomic.Int64
}

// routeMetrics are one route's bound instruments, shared by the states
// that have the route (a reload keeps the counts of a route it keeps).
type routeMetrics struct {
	dial, duration  prometheus.Observer
	opened          prometheus.Counter
	bytesIn, bytesO prometheus.Counter
	open            prometheus.Gauge
	refused         [len(statusNames)]prometheus.Counter
}

// newMetrics registers the server's metrics on reg.
func newMetrics(s *Server, reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{reg: reg, routes: map[string]*routeMetrics{}}
	m.handshakeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "portcullis_handshake_duration_seconds", Help: "Time of completed mTLS handshakes, by mode (mux or direct).",
		Buckets: handshakeBuckets}, []string{"mode"})
	m.hsMux, m.hsDirect = m.handshakeSeconds.WithLabelValues(modeMux), m.handshakeSeconds.WithLabelValues(modeDirect)
	hsFail := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_handshake_failures_total", Help: "Failed or refused handshakes, by reason class."}, []string{"reason"})
	for k := range m.handshakeFail {
		m.handshakeFail[k] = hsFail.WithLabelValues(hsClassNames[k])
	}
	m.dialSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "portcullis_backend_dial_duration_seconds", Help: "Time to connect to a route's backend, failed dials included.",
		Buckets: dialBuckets}, []string{"route"})
	m.streamSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "portcullis_stream_duration_seconds", Help: "Life of streams (and direct connections) carried to a backend, by route.",
		Buckets: streamBuckets}, []string{"route"})
	m.streams = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_streams_total", Help: "Streams (and direct connections) carried to a backend, by route."}, []string{"route"})
	m.refusedVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_streams_refused_total",
		Help: "Streams (and direct connections) refused, by route (empty: the stream named no route) and status."}, []string{"route", "status"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_stream_received_bytes_total", Help: "Bytes from clients to backends, by route, counted when a stream ends."}, []string{"route"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_stream_sent_bytes_total", Help: "Bytes from backends to clients, by route, counted when a stream ends."}, []string{"route"})
	m.streamsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portcullis_streams_open", Help: "Streams (and direct connections) open now, by route."}, []string{"route"})
	m.sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "portcullis_sessions_open", Help: "Mux sessions open now."})
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_reloads_total", Help: "Successful reloads since start."})
	m.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "portcullis_reload_failures_total", Help: "Failed reloads since start (the previous state stayed)."})
	info := version.Get()
	v := info.Version
	if v == "" {
		v = "(devel)"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "portcullis_build_info", Help: "The build: version, revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": v, "revision": info.Revision(), "goversion": info.Go}})
	build.Set(1)
	for _, c := range []prometheus.Collector{m.handshakeSeconds, hsFail, m.dialSeconds, m.streamSeconds, m.streams, m.refusedVec,
		m.bytesIn, m.bytesOut, m.streamsOpen, m.sessions, m.reloads, m.reloadFailures, build, &serverCollector{s}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// A registry shared with the rest of a program may have these already.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return nil, err
		}
	}
	return m, nil
}

// forPolicy returns the bound instruments of every route of pol, by name,
// and those of streams that named no route ("").
func (m *metrics) forPolicy(pol *policy.Policy) map[string]*routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]*routeMetrics{"": m.route("")}
	for _, r := range pol.Routes() {
		out[r.Name] = m.route(r.Name)
	}
	return out
}

// route returns the instruments of one route name, made on first use.
// Under m.mu.
func (m *metrics) route(name string) *routeMetrics {
	if rm := m.routes[name]; rm != nil {
		return rm
	}
	rm := &routeMetrics{}
	for st := range rm.refused {
		if st != int(mux.StatusOK) {
			rm.refused[st] = m.refusedVec.WithLabelValues(name, statusNames[st])
		}
	}
	if name != "" { // a stream that named no route is never carried
		rm.dial, rm.duration = m.dialSeconds.WithLabelValues(name), m.streamSeconds.WithLabelValues(name)
		rm.opened, rm.open = m.streams.WithLabelValues(name), m.streamsOpen.WithLabelValues(name)
		rm.bytesIn, rm.bytesO = m.bytesIn.WithLabelValues(name), m.bytesOut.WithLabelValues(name)
	}
	m.routes[name] = rm
	return rm
}

// dialRoute connects to the route's backend (see dial) and times it.
func (rm *routeMetrics) dialRoute(r *policy.Route) (net.Conn, error) {
	if r.IsBuiltin() {
		return nil, nil
	}
	start := time.Now()
	c, err := dial(r)
	rm.dial.Observe(time.Since(start).Seconds())
	return c, err
}

// closed counts the end of a carried stream.
func (rm *routeMetrics) closed(in, out int64, d time.Duration) {
	rm.open.Dec()
	rm.bytesIn.Add(float64(in))
	rm.bytesO.Add(float64(out))
	rm.duration.Observe(d.Seconds())
}

// opening counts a stream admitted to the route.
func (rm *routeMetrics) opening() {
	rm.opened.Inc()
	rm.open.Inc()
}

// countRefused counts a refused stream under its route, or under "" when
// the name is not a route of the current state.
func (s *Server) countRefused(v verdict) {
	s.streamsRefused.Add(1)
	routes := s.state.Load().routes
	rm := routes[v.name]
	if rm == nil {
		rm = routes[""]
	}
	if int(v.status) < len(rm.refused) && rm.refused[v.status] != nil {
		rm.refused[v.status].Inc()
	}
}

// countHandshakeFailure counts a failed handshake by its class.
func (s *Server) countHandshakeFailure(err error) {
	s.handshakeFail.Add(1)
	s.metrics.handshakeFail[handshakeClass(err)].Inc()
}

// handshook counts a completed handshake: its time by mode, and the
// client certificate's expiry.
func (s *Server) handshook(cs *tls.ConnectionState, d time.Duration) {
	s.handshakeOK.Add(1)
	if cs.NegotiatedProtocol == mux.ALPN {
		s.metrics.hsMux.Observe(d.Seconds())
	} else {
		s.metrics.hsDirect.Observe(d.Seconds())
	}
	na := cs.PeerCertificates[0].NotAfter.Unix()
	for i := 0; i < 8; i++ { // bounded: each failed swap saw a sooner value come in
		cur := s.metrics.clientNotAfter.Load()
		if cur != 0 && cur <= na || s.metrics.clientNotAfter.CompareAndSwap(cur, na) {
			return
		}
	}
}

// session counts an open mux session until the returned func is called.
func (m *metrics) session() (done func()) {
	m.sessions.Inc()
	return m.sessions.Dec
}

// serverCollector reports what the server knows already: gate counts,
// connections, pending and shed counts, the limits, the loaded state's
// certificates and the backend checks.
type serverCollector struct{ s *Server }

var (
	descAllowed   = prometheus.NewDesc("portcullis_connections_allowed_total", "Connections admitted by the network gate.", nil, nil)
	descDenied    = prometheus.NewDesc("portcullis_connections_denied_total", "Connections closed by the network rules (at the gate, or after a trusted proxy's header).", nil, nil)
	descHandshake = prometheus.NewDesc("portcullis_handshakes_total", "Completed mTLS handshakes.", nil, nil)
	descShed      = prometheus.NewDesc("portcullis_connections_shed_total",
		"Connections shed before their handshake, by kind: silent (nothing within the hello timeout), replaced (by a newer one from the same source over a pending cap), refused (over a pending cap, none to replace), proxy_header (from a trusted proxy without a valid PROXY header), conn_rate and handshake_rate (over a per-source rate), preempted (its handshake slot went to a client from a lighter source), held (its address is held after a session from it was closed for abusing the protocol).",
		[]string{"kind"}, nil)
	descOpen          = prometheus.NewDesc("portcullis_connections_open", "Client connections open now.", nil, nil)
	descPending       = prometheus.NewDesc("portcullis_connections_pending", "Connections that have not finished their handshake.", nil, nil)
	descInFlight      = prometheus.NewDesc("portcullis_handshakes_in_flight", "TLS handshakes holding a handshake slot now.", nil, nil)
	descMaxConns      = prometheus.NewDesc("portcullis_max_conns", "The cap on client connections open at once.", nil, nil)
	descMaxHandshakes = prometheus.NewDesc("portcullis_max_handshakes", "The cap on TLS handshakes in flight.", nil, nil)
	descMaxStreams    = prometheus.NewDesc("portcullis_max_streams", "The cap on streams open at once in one session.", nil, nil)
	descMaxPending    = prometheus.NewDesc("portcullis_max_pending", "The caps on connections before the end of their handshake: in all, per source address, per source network.", []string{"scope"}, nil)
	descRouteMax      = prometheus.NewDesc("portcullis_route_max_streams", "The cap on a route's streams open at once (routes with a cap).", []string{"route"}, nil)
	descLoaded        = prometheus.NewDesc("portcullis_last_reload_success_timestamp_seconds", "When the current certificates, rules and routes were loaded.", nil, nil)
	descServerCert    = prometheus.NewDesc("portcullis_server_cert_expiry_timestamp_seconds", "NotAfter of the server certificate.", nil, nil)
	descClientCA      = prometheus.NewDesc("portcullis_client_ca_expiry_timestamp_seconds", "The soonest NotAfter of the client CA bundle's certificates.", nil, nil)
	descCRL           = prometheus.NewDesc("portcullis_crl_next_update_timestamp_seconds", "nextUpdate of the loaded CRL.", nil, nil)
	descClientCert    = prometheus.NewDesc("portcullis_client_cert_soonest_expiry_timestamp_seconds", "The soonest NotAfter of the client certificates of the handshakes since start.", nil, nil)
	descBackendUp     = prometheus.NewDesc("portcullis_backend_up", "Whether the last check could connect to the route's backend (1) or not (0); while the admin endpoint runs.", []string{"route"}, nil)
)

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAllowed, descDenied, descHandshake, descShed, descOpen, descPending, descInFlight,
		descMaxConns, descMaxHandshakes, descMaxStreams, descMaxPending, descRouteMax, descLoaded, descServerCert, descClientCA,
		descCRL, descClientCert, descBackendUp} {
		ch <- d
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descAllowed, st.Allowed)
	counter(descDenied, st.Denied)
	counter(descHandshake, st.HandshakesOK)
	for k := range shedKinds {
		counter(descShed, s.shed[k].Load(), shedNames[k])
	}
	gauge(descOpen, float64(st.Open))
	gauge(descPending, float64(st.Pending))
	gauge(descInFlight, float64(s.handshakes.inFlight()))
	gauge(descMaxConns, float64(s.cfg.MaxConns))
	gauge(descMaxHandshakes, float64(s.cfg.MaxHandshakes))
	gauge(descMaxStreams, float64(s.cfg.MaxStreams))
	gauge(descMaxPending, float64(s.cfg.Pending.Max), "all")
	gauge(descMaxPending, float64(s.cfg.Pending.PerAddr), "addr")
	gauge(descMaxPending, float64(s.cfg.Pending.PerPrefix), "prefix")
	cur := s.state.Load()
	for _, r := range cur.pol.Routes() {
		if r.MaxStreams > 0 {
			gauge(descRouteMax, float64(r.MaxStreams), r.Name)
		}
	}
	gauge(descLoaded, float64(cur.loadedAt.Unix()))
	gauge(descServerCert, float64(cur.creds.Cert.Leaf.NotAfter.Unix()))
	if t := caExpiry(cur.creds); !t.IsZero() {
		gauge(descClientCA, float64(t.Unix()))
	}
	if cur.creds.CRL != nil && !cur.creds.CRL.NextUpdate.IsZero() {
		gauge(descCRL, float64(cur.creds.CRL.NextUpdate.Unix()))
	}
	if na := s.metrics.clientNotAfter.Load(); na != 0 {
		gauge(descClientCert, float64(na))
	}
	for _, b := range s.backendChecks() {
		up := 0.0
		if b.Reachable {
			up = 1
		}
		gauge(descBackendUp, up, b.Route)
	}
}

// caExpiry is the soonest NotAfter of the client CA bundle; zero if empty.
func caExpiry(st *conn.ServerState) time.Time {
	var t time.Time
	for _, c := range st.CAs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}
