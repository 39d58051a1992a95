package gateway

import (
	"fmt"
	"net/http"
	"runtime"
)

// AdminHandler serves /healthz (the process is up), /readyz (it is serving
// and not draining) and /metrics (the counters, Prometheus text format).
// It exposes no identity, key or payload.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		ready := !s.draining.Load() && len(s.gates) > 0
		s.mu.Unlock()
		if !ready {
			http.Error(w, "not ready: draining or not listening", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		st := s.Stats()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metric := func(name, kind, help string, v any) {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, kind, name, v)
		}
		metric("portcullis_connections_allowed_total", "counter", "Connections admitted by the network gate.", st.Allowed)
		metric("portcullis_connections_denied_total", "counter", "Connections closed by the network gate.", st.Denied)
		metric("portcullis_handshakes_total", "counter", "Completed mTLS handshakes.", st.HandshakesOK)
		metric("portcullis_handshake_failures_total", "counter", "Failed or refused handshakes.", st.HandshakesFailed)
		metric("portcullis_streams_total", "counter", "Streams (and direct connections) carried to a backend.", st.StreamsOK)
		metric("portcullis_streams_refused_total", "counter", "Streams refused (route, identity, backend, limits).", st.StreamsRefused)
		metric("portcullis_connections_open", "gauge", "Client connections open now.", st.Open)
		metric("portcullis_connections_pending", "gauge", "Connections that have not finished their handshake.", st.Pending)
		metric("portcullis_shed_silent_total", "counter", "Connections closed for sending nothing within the hello timeout.", st.ShedSilent)
		metric("portcullis_shed_replaced_total", "counter", "Silent connections reset to make room for a newer one from the same source.", st.ShedReplaced)
		metric("portcullis_shed_refused_total", "counter", "Connections reset over a pending cap with none to replace.", st.ShedRefused)
		metric("go_goroutines", "gauge", "Goroutines of the gateway process.", runtime.NumGoroutine())
		cur := s.state.Load()
		metric("portcullis_state_loaded_timestamp_seconds", "gauge", "When the current certificates, rules and routes were loaded.", cur.loadedAt.Unix())
		metric("portcullis_server_cert_expiry_timestamp_seconds", "gauge", "NotAfter of the server certificate.", cur.creds.Cert.Leaf.NotAfter.Unix())
		if cur.creds.CRL != nil && !cur.creds.CRL.NextUpdate.IsZero() {
			metric("portcullis_crl_next_update_timestamp_seconds", "gauge", "nextUpdate of the loaded CRL.", cur.creds.CRL.NextUpdate.Unix())
		}
	})
	return mux
}
