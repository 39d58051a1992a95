package conn

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// PendingConfig configures a Pending set. A zero cap means no cap.
type PendingConfig struct {
	// Max caps the pending connections of the whole server.
	Max int
	// PerAddr caps the pending connections from one source address.
	PerAddr int
	// PerPrefix caps the pending connections from one network: the
	// addresses that share their first PrefixV4 (IPv4) or PrefixV6 (IPv6)
	// bits. Defaults 24 and 64.
	PerPrefix          int
	PrefixV4, PrefixV6 int
}

// Pending counts the connections that have not finished their handshake
// (pending: silent, sending their ClientHello, or in the handshake), by
// source address, by source network and in all, so that one address or
// one network cannot hold the whole server's budget.
//
// A new connection over a cap takes the place of the oldest connection of
// the same group (address, network, or the server) that has not yet sent a
// complete ClientHello, which is closed with a reset: an idle socket is the
// cheapest thing to give up, and the newest connection is the one most
// likely to be a live client that is about to speak. Only when every
// pending connection of the group has spoken (each holds, or waits for, a
// handshake slot) is the new one refused. Pending is safe for concurrent
// use.
type Pending struct {
	cfg PendingConfig

	mu       sync.Mutex
	all      group
	addrs    map[netip.Addr]*group
	prefixes map[netip.Prefix]*group

	evicted, refused atomic.Uint64
}

// levels of the groups a ticket belongs to, also the index of its links.
const (
	levelAll = iota
	levelPrefix
	levelAddr
	levels
)

// maxUnreadChecks bounds the connections one Add asks the kernel about.
const maxUnreadChecks = 8

var levelNames = [levels]string{"server", "source network", "source address"}

// group is the pending connections of one address, one network or the
// server: a count, and the silent ones in arrival order.
type group struct {
	n          int
	head, tail *Ticket // silent tickets, oldest first
}

// Ticket is one pending connection's place in a Pending set.
type Ticket struct {
	p      *Pending
	conn   net.Conn
	addr   netip.Addr
	prefix netip.Prefix
	groups [levels]*group
	links  [levels]struct{ prev, next *Ticket }
	silent bool // in the silent lists
	done   bool // counts given back (by Done or by an eviction)

	evicted atomic.Bool
	heard   atomic.Bool // a first byte was read
}

// NewPending returns an empty set.
func NewPending(cfg PendingConfig) *Pending {
	if cfg.PrefixV4 <= 0 || cfg.PrefixV4 > 32 {
		cfg.PrefixV4 = 24
	}
	if cfg.PrefixV6 <= 0 || cfg.PrefixV6 > 128 {
		cfg.PrefixV6 = 64
	}
	return &Pending{cfg: cfg, addrs: map[netip.Addr]*group{}, prefixes: map[netip.Prefix]*group{}}
}

// PendingFullError is the refusal of a connection over a cap when no
// connection of its group could make room.
type PendingFullError struct {
	Group string // "source address", "source network" or "server"
	Cap   int
}

func (e *PendingFullError) Error() string {
	return fmt.Sprintf("too many pending connections from this %s (%d), all of them in their handshake", e.Group, e.Cap)
}

// Add counts c, from addr, as pending and silent. Over a cap, it closes
// (with a reset) the oldest silent connection of the group to make room,
// or, when there is none, refuses c with a *PendingFullError (c is left
// open: the caller resets it).
func (p *Pending) Add(c net.Conn, addr netip.Addr) (*Ticket, error) {
	t := &Ticket{p: p, conn: c, addr: addr, prefix: SourcePrefix(addr, p.cfg.PrefixV4, p.cfg.PrefixV6)}
	caps := [levels]int{p.cfg.Max, p.cfg.PerPrefix, p.cfg.PerAddr}

	var victims []*Ticket
	p.mu.Lock()
	t.groups = [levels]*group{&p.all, p.prefixes[t.prefix], p.addrs[addr]}
	for lv := levelAddr; lv >= levelAll; lv-- { // the narrowest group first
		g := t.groups[lv]
		if caps[lv] <= 0 || g == nil || g.n < caps[lv] {
			continue
		}
		v := g.victimLocked(lv)
		if v == nil {
			p.mu.Unlock()
			p.refused.Add(1)
			resetAll(victims)
			return nil, &PendingFullError{Group: levelNames[lv], Cap: caps[lv]}
		}
		v.evicted.Store(true)
		v.releaseLocked()
		victims = append(victims, v)
	}
	// Looked up again: an eviction may have emptied and dropped a group.
	t.groups[levelPrefix] = groupOf(p.prefixes, t.prefix)
	t.groups[levelAddr] = groupOf(p.addrs, addr)
	for lv, g := range t.groups {
		g.n++
		t.pushLocked(lv)
	}
	t.silent = true
	p.mu.Unlock()
	p.evicted.Add(uint64(len(victims)))
	resetAll(victims)
	return t, nil
}

func groupOf[K comparable](m map[K]*group, k K) *group {
	g := m[k]
	if g == nil {
		g = &group{}
		m[k] = g
	}
	return g
}

func resetAll(ts []*Ticket) {
	for _, t := range ts {
		_ = Reset(t.conn)
	}
}

// Spoke marks the connection as having sent its ClientHello: it is still
// pending, but no newer connection takes its place any more.
func (t *Ticket) Spoke() {
	t.p.mu.Lock()
	if t.silent {
		t.unlinkLocked()
	}
	t.p.mu.Unlock()
}

// Heard records that the connection's first byte was read (see
// [ReadHello]'s firstByte).
func (t *Ticket) Heard() { t.heard.Store(true) }

// Done ends the connection's pending time (its handshake ended, or it
// closed). Idempotent; a no-op after an eviction.
func (t *Ticket) Done() {
	t.p.mu.Lock()
	t.releaseLocked()
	t.p.mu.Unlock()
}

// Evicted reports whether a newer connection took this one's place (and
// closed it).
func (t *Ticket) Evicted() bool { return t.evicted.Load() }

// releaseLocked gives back the ticket's counts and forgets empty groups.
func (t *Ticket) releaseLocked() {
	if t.done {
		return
	}
	t.done = true
	if t.silent {
		t.unlinkLocked()
	}
	for _, g := range t.groups {
		g.n--
	}
	if t.groups[levelPrefix].n == 0 {
		delete(t.p.prefixes, t.prefix)
	}
	if t.groups[levelAddr].n == 0 {
		delete(t.p.addrs, t.addr)
	}
}

// victimLocked picks the connection of g (at level lv) to give up: its
// oldest silent one, passing over those whose ClientHello waits in their
// socket buffer, not yet read because their goroutine has not run (they
// have spoken; a few are checked at most, and the one after them is
// taken unchecked). Once a first byte was read, bytes waiting are a
// trickle, not a held-up ClientHello: such a connection stays in turn.
// Nil when g has no silent connection.
func (g *group) victimLocked(lv int) *Ticket {
	v := g.head
	for i := 0; v != nil && i < maxUnreadChecks; i++ {
		if v.heard.Load() || !hasUnread(v.conn) {
			return v
		}
		v = v.links[lv].next
	}
	return v
}

func (t *Ticket) pushLocked(lv int) {
	g := t.groups[lv]
	t.links[lv].prev = g.tail
	if g.tail != nil {
		g.tail.links[lv].next = t
	} else {
		g.head = t
	}
	g.tail = t
}

func (t *Ticket) unlinkLocked() {
	t.silent = false
	for lv, g := range t.groups {
		l := &t.links[lv]
		if l.prev != nil {
			l.prev.links[lv].next = l.next
		} else {
			g.head = l.next
		}
		if l.next != nil {
			l.next.links[lv].prev = l.prev
		} else {
			g.tail = l.prev
		}
		l.prev, l.next = nil, nil
	}
}

// PendingCounts are a Pending set's figures.
type PendingCounts struct {
	Pending          int    // pending now
	Evicted, Refused uint64 // since NewPending
}

// Counts returns the set's figures.
func (p *Pending) Counts() PendingCounts {
	p.mu.Lock()
	n := p.all.n
	p.mu.Unlock()
	return PendingCounts{Pending: n, Evicted: p.evicted.Load(), Refused: p.refused.Load()}
}

// Reset closes c so that its peer sees a TCP reset rather than a clean end
// (SO_LINGER 0 on the TCP connection that is or is under c), and leaves no
// TIME_WAIT behind. c itself is closed, so wrappers such as the gate's
// give back what they hold.
func Reset(c net.Conn) error {
	inner := c
	for range 4 { // a few layers at most
		if l, ok := inner.(interface{ SetLinger(int) error }); ok {
			_ = l.SetLinger(0)
			break
		}
		u, ok := inner.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		inner = u.NetConn()
	}
	return c.Close()
}
