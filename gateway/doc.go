// Package gateway is the portcullis server as a Go type: it gates accepted
// connections by source address, completes mutual TLS, authorizes the
// client's identity per route and carries its streams to named backends,
// logging one audit event per decision.
//
// A Server is built from a config.Gateway by New and run with Serve; Reload
// swaps certificates, CA, CRL, network rules and routes atomically, and
// Shutdown drains. Other Go programs can embed it the same way the gateway
// command does.
package gateway
