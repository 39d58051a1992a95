package tunnel

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// peerCredAvailable reports whether peerUID works on this system.
const peerCredAvailable = true

// maxSocketLines bounds the lines read from one /proc/net/tcp* file.
const maxSocketLines = 1 << 20

// peerUID returns the user id of the process at the other end of a local
// connection: SO_PEERCRED for a UNIX socket; for TCP, the owner of the
// peer's socket in the kernel's socket table (/proc/net/tcp and tcp6: the
// entry whose local address is the peer's and whose remote address is
// ours). A peer on another machine has no entry: an error.
func peerUID(c net.Conn) (uint32, error) {
	switch c := c.(type) {
	case *net.UnixConn:
		raw, err := c.SyscallConn()
		if err != nil {
			return 0, err
		}
		var cred *syscall.Ucred
		var cerr error
		if err := raw.Control(func(fd uintptr) {
			cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		}); err != nil {
			return 0, err
		}
		if cerr != nil {
			return 0, fmt.Errorf("SO_PEERCRED: %w", cerr)
		}
		return cred.Uid, nil
	case *net.TCPConn:
		peer, err1 := netip.ParseAddrPort(c.RemoteAddr().String())
		us, err2 := netip.ParseAddrPort(c.LocalAddr().String())
		if err := errors.Join(err1, err2); err != nil {
			return 0, err
		}
		return tcpOwner(peer, us, []string{"/proc/net/tcp", "/proc/net/tcp6"})
	}
	return 0, fmt.Errorf("%w: a %T", ErrPeerCred, c)
}

// tcpOwner finds the socket whose local address is local and whose remote
// address is remote in the socket tables files and returns its uid.
func tcpOwner(local, remote netip.AddrPort, files []string) (uint32, error) {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	for _, name := range files {
		uid, found, err := scanSockets(name, local, remote)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if found {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("no local socket connects from %s to %s: the peer is on another machine, or gone", local, remote)
}

// scanSockets reads one /proc/net/tcp-format file.
func scanSockets(name string, local, remote netip.AddrPort) (uid uint32, found bool, _ error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 0; n < maxSocketLines && sc.Scan(); n++ {
		if n == 0 {
			continue // the header
		}
		if uid, ok := matchSocketLine(sc.Text(), local, remote); ok {
			return uid, true, nil
		}
	}
	return 0, false, sc.Err()
}

// matchSocketLine parses one line of /proc/net/tcp or tcp6
// ("sl local_address rem_address st queues timer retrnsmt uid ...") and
// returns its uid when its addresses are local and remote.
func matchSocketLine(line string, local, remote netip.AddrPort) (uint32, bool) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return 0, false
	}
	l, ok1 := parseProcAddr(f[1])
	r, ok2 := parseProcAddr(f[2])
	if !ok1 || !ok2 || l != local || r != remote {
		return 0, false
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(uid), true
}

// parseProcAddr reads ADDR:PORT as the kernel prints it: the address as
// 32-bit words in host byte order, 8 hex digits each, the port in 4 hex
// digits. IPv4-mapped addresses are unmapped.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}
