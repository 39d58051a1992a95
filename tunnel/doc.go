// Package tunnel is the portcullis client as Go types: a Dialer that reaches
// routes behind a gateway (one shared mux session over mutual TLS, re-dialed
// with backoff when it dies, or one TLS connection per stream in direct
// mode), local port forwarding on top of it, and a netcat-style copy between
// a reader/writer pair and one stream.
//
// A Forwarder listens on TCP addresses or UNIX sockets (mode 0600), can
// refuse local peers of other users (Local.SameUser: SO_PEERCRED, or the
// kernel's TCP socket table, on Linux), and can answer a client whose
// stream was refused in its own protocol (Local.Refusal: PostgreSQL,
// Redis, HTTP) so that it shows the gateway's reason.
//
// A Dialer's DialContext can serve as the DialContext of a database driver:
// the address names the route.
package tunnel
