package gateway

import (
	"context"
	"net"
	"sort"
	"sync"
	"time"
)

// reloadStatus is the outcome of the last Reload (or of the load in New).
type reloadStatus struct {
	at  time.Time
	err error
}

// noteReload records a reload's outcome for /readyz, /status and the
// metrics. first is the load in New, which is not counted as a reload.
func (s *Server) noteReload(first bool, at time.Time, err error) {
	s.lastReload.Store(&reloadStatus{at: at, err: err})
	switch {
	case first:
	case err != nil:
		s.metrics.reloadFailures.Inc()
	default:
		s.metrics.reloads.Inc()
	}
}

// notReady says why the server is not ready, or "" when it is: it is not
// listening, it is draining, or (unless Config.ReadyDespiteReloadFailure)
// its last reload failed.
func (s *Server) notReady() string {
	s.mu.Lock()
	listening := len(s.gates) > 0
	s.mu.Unlock()
	switch {
	case s.draining.Load():
		return "draining"
	case !listening:
		return "not listening"
	}
	if r := s.lastReload.Load(); r != nil && r.err != nil && !s.cfg.ReadyDespiteReloadFailure {
		return "the last reload failed (the previous state is serving): " + r.err.Error()
	}
	return ""
}

// BackendCheckInterval is how often the admin endpoint's background check
// connects to each route's backend, once per route.
const BackendCheckInterval = 10 * time.Second

// backendCheckParallel bounds the dials of one round of the check.
const backendCheckParallel = 16

// BackendStatus is the outcome of the last reachability check of one
// route's backend.
type BackendStatus struct {
	Route     string    `json:"route"`
	Backend   string    `json:"backend"`
	Reachable bool      `json:"reachable"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// checker connects to every route's backend once per interval while it
// runs, and keeps the last results.
type checker struct {
	start  sync.Once
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has ended; nil if never started

	mu      sync.Mutex
	results map[string]BackendStatus // by route
}

// startChecks starts the backend checks, once; not after Close or
// Shutdown, which stop them.
func (s *Server) startChecks(interval time.Duration) {
	c := &s.checks
	c.start.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.draining.Load() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go func() {
			defer close(c.done)
			s.checkLoop(ctx, interval)
		}()
	})
}

// stopChecks stops the backend checks and waits for them. Call it after
// stopLocked (under or outside mu), so that none starts afterwards.
func (s *Server) stopChecks() {
	s.mu.Lock()
	cancel, done := s.checks.cancel, s.checks.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *Server) checkLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.checkOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkOnce dials each route's backend of the current state once, at most
// backendCheckParallel at a time, each within its route's dial timeout.
// Builtin routes are reachable without a dial.
func (s *Server) checkOnce(ctx context.Context) {
	routes := s.state.Load().pol.Routes()
	results := make(map[string]BackendStatus, len(routes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, backendCheckParallel)
	for _, r := range routes {
		if r.IsBuiltin() {
			mu.Lock()
			results[r.Name] = BackendStatus{Route: r.Name, Backend: r.Backend, Reachable: true}
			mu.Unlock()
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d := net.Dialer{Timeout: r.DialTimeout}
			c, err := d.DialContext(ctx, "tcp", r.Backend)
			b := BackendStatus{Route: r.Name, Backend: r.Backend, Reachable: err == nil, CheckedAt: time.Now().UTC()}
			if err != nil {
				b.Error = err.Error()
			} else {
				c.Close()
			}
			mu.Lock()
			results[r.Name] = b
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // cut short: keep the last complete round
	}
	s.checks.mu.Lock()
	s.checks.results = results
	s.checks.mu.Unlock()
}

// backendChecks returns the last round's results in route order; none
// before the first round ends or when the checks do not run.
func (s *Server) backendChecks() []BackendStatus {
	s.checks.mu.Lock()
	out := make([]BackendStatus, 0, len(s.checks.results))
	for _, b := range s.checks.results {
		out = append(out, b)
	}
	s.checks.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

// Status is what /status reports.
type Status struct {
	// State is "serving" or "draining".
	State string `json:"state"`
	// Ready is what /readyz answers; NotReady says why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// LastReload is the outcome of the last reload (or of the first load).
	LastReload ReloadStatus `json:"last_reload"`
	// LoadedAt is when the state now serving was loaded.
	LoadedAt     time.Time         `json:"loaded_at"`
	Certificates CertificateStatus `json:"certificates"`
	// Backends are the last background check's results, by route.
	Backends []BackendStatus `json:"backends"`
}

// ReloadStatus is the outcome of one reload.
type ReloadStatus struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// CertificateStatus are the expiries of the loaded credentials.
type CertificateStatus struct {
	ServerNotAfter   time.Time `json:"server_not_after"`
	ClientCANotAfter time.Time `json:"client_ca_not_after,omitzero"` // the soonest of the bundle
	CRLNextUpdate    time.Time `json:"crl_next_update,omitzero"`
	// ClientSoonestNotAfter is the soonest expiry of a client certificate
	// seen in a handshake since start.
	ClientSoonestNotAfter time.Time `json:"client_soonest_not_after,omitzero"`
}

// Status returns the server's state, its last reload, the expiries of its
// credentials and the last backend checks.
func (s *Server) Status() Status {
	st := Status{State: "serving", Backends: s.backendChecks()}
	if s.draining.Load() {
		st.State = "draining"
	}
	st.NotReady = s.notReady()
	st.Ready = st.NotReady == ""
	if r := s.lastReload.Load(); r != nil {
		st.LastReload = ReloadStatus{Time: r.at.UTC(), OK: r.err == nil}
		if r.err != nil {
			st.LastReload.Error = r.err.Error()
		}
	}
	cur := s.state.Load()
	st.LoadedAt = cur.loadedAt.UTC()
	st.Certificates.ServerNotAfter = cur.creds.Cert.Leaf.NotAfter.UTC()
	st.Certificates.ClientCANotAfter = caExpiry(cur.creds).UTC()
	if cur.creds.CRL != nil {
		st.Certificates.CRLNextUpdate = cur.creds.CRL.NextUpdate.UTC()
	}
	if na := s.metrics.clientNotAfter.Load(); na != 0 {
		st.Certificates.ClientSoonestNotAfter = time.Unix(na, 0).UTC()
	}
	return st
}
