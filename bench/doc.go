// Package bench is the load generator behind `tunnel bench`: it drives a
// portcullis gateway (or, with Settings.Direct, any mutual-TLS server, or
// with Settings.UnsafePlaintext a plain TCP relay) with many workers and
// measures what it can take:
//
//   - ModeHandshake: full mTLS connections per second, each carrying one
//     small round trip through a route before it closes (TLS 1.3 session
//     resumption instead with Settings.Resume);
//   - ModeStreams: mux streams opened, used for one round trip and closed
//     per second over long-lived sessions;
//   - ModeThroughput: MB/s through one or more streams, up, down or both;
//   - ModeDeny: connection attempts per second from a source address the
//     gateway's network rules deny.
//
// A run stops by itself after Settings.Duration or Settings.Count
// operations. Latencies go into a [Histogram], a log-linear bucket array
// with bounded relative error, from which the [Result] reports quantiles.
// [ParseSettings] reads the settings from flags and TUNNEL_* environment
// variables with package config; [Run] runs them; [Result.WriteText] and
// [Result.WriteJSON] print a summary for people and for scripts.
//
// The end-to-end suite that compares the gateway with baselines lives in
// bench/suite; the small baseline servers in bench/cmd.
package bench
