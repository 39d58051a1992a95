//go:build !unix

package tunnel

// restrictSocket does nothing here; the file's mode is set after bind.
func restrictSocket(uintptr) {}
