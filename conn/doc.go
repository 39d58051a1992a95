// Package conn owns the security of one connection: the TLS configurations of
// both sides, credentials that can be reloaded (certificate, key, CA bundle,
// CRL), client-certificate verification, the Identity read from a verified
// certificate and the patterns that match it, and the accept-time network gate
// that wraps a net.Listener.
//
// Nothing here decides which backend a client may reach: that is the gateway's
// policy, which takes an Identity, a route and a source address.
package conn
