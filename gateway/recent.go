package gateway

import (
	"net/netip"
	"sync"
	"time"
)

// recentClients remembers the source addresses that completed a handshake
// lately. A handshake from one of them uses the caching TLS configuration
// (conn.ServerState.CachingServerConfig: the client's chain verified once
// per snapshot, not at every handshake); others use the one whose refusals
// carry the precise alert (unknown CA, expired) the tunnel explains. A
// failed handshake makes its address new again, so that a client whose
// certificate is refused with the caching configuration's generic
// bad_certificate alert gets the precise one when it tries again.
type recentClients struct {
	mu sync.Mutex
	m  map[netip.Addr]time.Time
}

const (
	// recentFor is how long an address counts as recent after its last
	// handshake.
	recentFor = 10 * time.Minute
	// maxRecent bounds the addresses kept; when full, the map is emptied
	// and refills with the clients that come back.
	maxRecent = 1 << 16
)

func (r *recentClients) seen(a netip.Addr, now time.Time) {
	a = a.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= maxRecent {
		r.m = make(map[netip.Addr]time.Time)
	}
	r.m[a] = now
}

// forget drops a: its next handshake gets the precise alerts again.
func (r *recentClients) forget(a netip.Addr) {
	a = a.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, a)
}

func (r *recentClients) recent(a netip.Addr, now time.Time) bool {
	a = a.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.m[a]
	return ok && now.Sub(t) < recentFor
}
