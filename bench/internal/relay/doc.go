// Package relay is the shared core of the baseline servers under
// bench/cmd: an accept loop and a two-way copy with half-close, written the
// plain way with the standard library only, so that the baselines measure
// Go's networking and crypto/tls rather than anything of portcullis.
package relay
