// Package gcfloor raises the heap size below which the garbage collector
// does not run, for a process with a small live heap and many short-lived
// allocations (a TLS terminator: each handshake leaves some 100 KB of
// garbage behind).
//
// With the default GOGC=100 the collector runs each time the heap doubles,
// and at the least every 4 MiB: a gateway with a few MiB live collects
// every few dozen handshakes, and each collection scans every goroutine's
// stack. Set adds an untouched allocation of n bytes (a ballast) that the
// collector counts as live: the heap goal of a small process rises by
// twice n, while a large one (many MiB live) changes by a few per cent.
// The ballast holds no pointers, so it is never scanned, and its pages are
// never written, so they take no resident memory (RSS) themselves; what the
// higher goal costs is the garbage that waits longer for a collection, up
// to 2n more resident at most (an idle gateway: some 4 MiB for n = 8 MiB).
//
// GOGC set in the environment means the operator chose: Set does nothing.
package gcfloor

import "os"

var ballast []byte

// Set adds a ballast of n bytes unless GOGC is set in the environment; it
// reports whether it did. Call it once, at the start of main.
func Set(n int) bool {
	if _, ok := os.LookupEnv("GOGC"); ok || n <= 0 || ballast != nil {
		return false
	}
	ballast = make([]byte, n)
	return true
}

// Size is the ballast in bytes, 0 when none.
func Size() int { return len(ballast) }
