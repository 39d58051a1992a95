// Command suite is the end-to-end benchmark of portcullis (`make bench`):
// on loopback, in one run, it builds and starts the gateway, drives it with
// `tunnel bench` in every mode, and measures the same load against
// baselines started beside it:
//
//   - tcprelay: a minimal Go TCP relay, plain TCP (bench/cmd/tcprelay);
//   - tlsterm: a bare crypto/tls mutual-TLS terminator, TLS 1.3, the same
//     ECDSA P-256 certificates (bench/cmd/tlsterm);
//   - haproxy (mode tcp, ssl verify required) and stunnel4, when installed.
//
// Besides rates and latencies it reads the servers' own CPU time from /proc
// (per handshake, per stream, per GB: far steadier than rates on a shared
// machine) and the gateway's resident memory with 10,000 idle streams.
//
// Under -flood (on by default; Linux only) it also times a good client,
// one full mTLS handshake and round trip every 100 ms from 127.0.0.1, with
// and without 500 sockets from 127.0.0.2 that stay silent or trickle a
// byte of a TLS record header a second, against a fresh gateway (mux and
// direct), haproxy and stunnel, and reads their memory, threads and the
// gateway's goroutines and pending connections during and after.
//
// Under -latency (on by default) it times one request at a time through
// two hops: a serial 64-byte ping-pong through the TCP echo backend, p50,
// p99 and mean, and pgbench -S with 1 and 8 clients against a throwaway
// PostgreSQL cluster when its server programs are installed, through a pair
// of plain io.Copy relays (the floor), tunnel forward --direct and tunnel
// forward (mux) to a gateway, ghostunnel when on PATH, and an earlier
// build's tunnel and gateway with -latency-before, interleaved, as ratios
// to the relay pair. -latency-only runs that section alone (make
// bench-latency).
//
// Under -hostile (on by default; Linux only) bench/cmd/hostile, a client
// with a valid certificate, floods its own session from 127.0.0.2 in each
// mode of bench/internal/hostile (refused streams pushed full, unread
// pings, frames for streams never opened, refusals for log volume, data
// beyond the window) while a good client makes round trips and stream
// opens on its own session, against the gateway built and the one at
// -hostile-baseline (built in a temporary git worktree); it reads the
// gateway's peak RSS, goroutines, log and CPU. It prints the ratios ours / baseline, checks the targets, and writes
// bench/RESULTS.md (the "## Notes" section of an existing file is kept).
//
// Run it from the repository: go run ./bench/suite [-duration 4s] [-quick].
// It takes about fifteen minutes with its defaults and every baseline.
package main
