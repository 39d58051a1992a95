//go:build !linux

package systemd

// monotonicUsec is not known outside Linux: the notification goes without it.
func monotonicUsec() (uint64, bool) { return 0, false }
