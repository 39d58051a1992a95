//go:build !linux

package sandbox

// Restrict does nothing outside Linux.
func Restrict(Policy) (Result, error) { return Result{}, nil }
