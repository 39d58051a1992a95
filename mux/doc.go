// Package mux carries many TCP streams over one mutually authenticated TLS
// connection. It owns the mux-mode wire protocol of portcullis and nothing
// about policy:
//
//   - the yamux configuration both ends use ([Config]) and the TLS ALPN id
//     ([ALPN]);
//   - the stream-open exchange: a [Request] naming a route, answered by a
//     [Response] with a [Status] and, unless OK, a short reason; then the
//     stream carries raw bytes;
//   - [Stream], a yamux stream with half-close ([Stream.CloseWrite]), a
//     full [Stream.Close] and an abort ([Stream.Reset]); [Refuse] answers
//     a stream with a refusal and resets it;
//   - [Pipe], bidirectional copying with half-close and pooled buffers;
//   - [Client], the lazily dialed, shared and self-healing client session
//     used by the tunnel;
//   - [SessionConn], the connection wrapper under every session (gateway
//     and client): it sends the frames queued while a write is under way in
//     the next write, one TLS record for many, and ends the waits of the
//     streams of a session whose connection failed; [KeepAlive];
//   - [ServeStream], a per-stream server helper (read the request, decide,
//     dial, answer, pipe) for servers simpler than the gateway, which runs
//     its own loop for per-stream re-checks, caps and builtin routes.
//
// Wire format of a stream request (client to gateway), all fields bounded:
//
//	[version u8 = 1][route length u8, 1..255][route bytes]
//
// and of the answer (gateway to client):
//
//	[status u8]                                                 status OK
//	[status u8][reason length u16 big-endian, 0..1024][reason]  any other status
//
// Anything malformed ends that stream with [StatusBadRequest] and a reason,
// never the session. Sentinel errors are listed in errors.go.
package mux
