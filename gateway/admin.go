package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves /healthz (the process is up), /readyz (it is
// listening, not draining, and its last reload did not fail, unless
// Config.ReadyDespiteReloadFailure), /status (JSON: see Status) and
// /metrics (the server's registry, Prometheus exposition). It exposes no
// identity, address, key or payload.
//
// The first call starts a background check of the routes' backends (one
// TCP connect per route every BackendCheckInterval, within the route's dial
// timeout), whose results /status and portcullis_backend_up report; Close
// and Shutdown stop it.
func (s *Server) AdminHandler() http.Handler {
	s.startChecks(BackendCheckInterval)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := s.notReady(); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// Registry returns the registry the server's metrics are on: Config.Registry,
// or the server's own.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }
