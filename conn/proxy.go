package conn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// MaxProxyHeader is the largest PROXY protocol header ReadProxyHeader
// accepts, TLVs included: load balancers send a few dozen bytes (v1 is at
// most 107), and a header is read before anything else is known of the
// peer, so it is kept small.
const MaxProxyHeader = 1024

// Errors of ReadProxyHeader, for the log and the counters.
var (
	ErrNoProxyHeader       = errors.New("no PROXY protocol header from a trusted proxy")
	ErrProxyHeaderTooLarge = fmt.Errorf("PROXY protocol header larger than %d bytes", MaxProxyHeader)
	ErrProxyHeaderInvalid  = errors.New("malformed PROXY protocol header")
)

// ReadProxyHeader reads the PROXY protocol header (version 1 or 2) that a
// trusted load balancer sends first on c, within timeout, and returns the
// client address it carries and a connection that replays whatever came
// after the header (the start of the ClientHello) and whose RemoteAddr is
// that client address. A LOCAL header (the
// proxy's own health check) carries no client: the address is c's own
// peer. Refused, with the connection left to the caller: no header
// (ErrNoProxyHeader), one over MaxProxyHeader (ErrProxyHeaderTooLarge), a
// malformed one or one that is not TCP over IPv4 or IPv6
// (ErrProxyHeaderInvalid), and the deadline (os.ErrDeadlineExceeded). The
// header is parsed by github.com/pires/go-proxyproto.
func ReadProxyHeader(c net.Conn, timeout time.Duration) (netip.AddrPort, net.Conn, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	br := bufio.NewReaderSize(io.LimitReader(c, MaxProxyHeader+1), MaxProxyHeader+1)
	if err := checkProxySize(br); err != nil {
		return netip.AddrPort{}, nil, err
	}
	h, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return netip.AddrPort{}, nil, ErrNoProxyHeader
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return netip.AddrPort{}, nil, err
	case err != nil:
		return netip.AddrPort{}, nil, fmt.Errorf("%w: %w", ErrProxyHeaderInvalid, err)
	}
	rest := make([]byte, br.Buffered())
	_, _ = io.ReadFull(br, rest)
	out := &replayConn{Conn: c, buf: rest}
	if h.Command.IsLocal() {
		return RemoteAddrPort(c), out, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: not TCP over IPv4 or IPv6 (%v)", ErrProxyHeaderInvalid, h.TransportProtocol)
	}
	ap := src.AddrPort()
	client := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	out.remote = net.TCPAddrFromAddrPort(client)
	return client, out, nil
}

// checkProxySize refuses a version 2 header whose length field says it is
// larger than MaxProxyHeader, before any of it is read past the fixed part
// (version 1 headers bound themselves).
func checkProxySize(br *bufio.Reader) error {
	b, err := br.Peek(16)
	if err != nil || string(b[:12]) != string(proxyproto.SIGV2) {
		return nil // not v2, or too short: the parser says what it is
	}
	if n := 16 + (int(b[14])<<8 | int(b[15])); n > MaxProxyHeader {
		return ErrProxyHeaderTooLarge
	}
	return nil
}
