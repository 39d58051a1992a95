//go:build !linux

package tunnel

import (
	"fmt"
	"net"
)

// peerCredAvailable reports whether peerUID works on this system.
const peerCredAvailable = false

// peerUID is unavailable here: the user of a local peer is read from
// Linux's socket table and SO_PEERCRED.
func peerUID(c net.Conn) (uint32, error) {
	return 0, fmt.Errorf("%w on this system", ErrPeerCred)
}
