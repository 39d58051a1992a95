//go:build unix

package tunnel

import "syscall"

// restrictSocket sets mode 0600 on a socket before it is bound: Linux
// creates the socket file with that mode (less the umask), so the file is
// never wider, not even for a moment.
func restrictSocket(fd uintptr) { _ = syscall.Fchmod(int(fd), 0o600) }
