package gateway

import (
	"fmt"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
	"github.com/portcullis-gw/portcullis/policy"
	"golang.org/x/time/rate"
)

// identities counts, per client identity, the sessions and streams it
// holds over the whole gateway and its stream opens, against the limits
// the current policy gives it (policy.Limits). An identity is kept while
// it holds a session or a stream, or its stream-rate bucket is not full
// again (else reconnecting would restart the bucket); the counts live in
// the server, so they survive reloads, and each check reads the limits of
// the current policy.
type identities struct {
	mu sync.Mutex
	m  map[string]*identityUse
}

type identityUse struct {
	sessions, streams int
	lim               *rate.Limiter
	limRate           conn.Rate // what lim was made for
}

// sweepAt is the number of entries at which useLocked drops those that
// hold nothing and whose bucket has refilled.
const sweepAt = 4096

// useLocked returns name's entry, made when missing.
func (ids *identities) useLocked(name string) *identityUse {
	if ids.m == nil {
		ids.m = map[string]*identityUse{}
	}
	u := ids.m[name]
	if u == nil {
		if len(ids.m) >= sweepAt {
			now := time.Now()
			for n, e := range ids.m {
				ids.forgetLocked(n, e, now)
			}
		}
		u = &identityUse{}
		ids.m[name] = u
	}
	return u
}

// forgetLocked drops name's entry once it holds nothing and its stream
// rate bucket is full again.
func (ids *identities) forgetLocked(name string, u *identityUse, now time.Time) {
	if u.sessions == 0 && u.streams == 0 && (u.lim == nil || u.lim.TokensAt(now) >= float64(u.lim.Burst())) {
		delete(ids.m, name)
	}
}

// session takes one of the identity's session slots; release gives it back.
// Over the limit it returns nil and the refusal.
func (ids *identities) session(name string, l policy.Limits) (release func(), v *verdict) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	u := ids.useLocked(name)
	if l.MaxSessions > 0 && u.sessions >= l.MaxSessions {
		ids.forgetLocked(name, u, time.Now())
		r := refused("", mux.StatusOverloaded,
			fmt.Sprintf("identity %s has %d sessions open, its limit", name, u.sessions), l.Rule("max_sessions"))
		return nil, &r
	}
	u.sessions++
	var once sync.Once
	return func() {
		once.Do(func() {
			ids.mu.Lock()
			defer ids.mu.Unlock()
			u.sessions--
			ids.forgetLocked(name, u, time.Now())
		})
	}, nil
}

// stream checks the identity's stream rate and takes one of its stream
// slots, or returns the refusal.
func (ids *identities) stream(name string, l policy.Limits, now time.Time) (release func(), v *verdict) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	u := ids.useLocked(name)
	if l.MaxStreams > 0 && u.streams >= l.MaxStreams {
		ids.forgetLocked(name, u, now)
		r := refused("", mux.StatusOverloaded,
			fmt.Sprintf("identity %s has %d streams open, its limit", name, u.streams), l.Rule("max_streams"))
		return nil, &r
	}
	if !l.StreamRate.IsZero() {
		if u.lim == nil || u.limRate != l.StreamRate {
			u.lim, u.limRate = l.StreamRate.NewLimiter(), l.StreamRate
		}
		if !u.lim.AllowN(now, 1) {
			ids.forgetLocked(name, u, now)
			r := refused("", mux.StatusOverloaded,
				fmt.Sprintf("identity %s opens streams faster than its limit of %v a second", name, l.StreamRate.PerSec), l.Rule("stream_rate"))
			return nil, &r
		}
	}
	u.streams++
	var once sync.Once
	return func() {
		once.Do(func() {
			ids.mu.Lock()
			defer ids.mu.Unlock()
			u.streams--
			ids.forgetLocked(name, u, time.Now())
		})
	}, nil
}
