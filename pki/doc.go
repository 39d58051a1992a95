// Package pki is a small certificate authority for portcullis: it creates
// root and intermediate CAs, issues server and client certificates with the
// right extensions, signs certificate signing requests, revokes certificates
// and publishes CRLs.
//
// # In memory
//
// NewCA creates a self-signed root; CA.NewIntermediate an intermediate under
// it (path length 0). CA.Issue generates a key and a leaf certificate for a
// Request: a Server certificate has extended key usage serverAuth only and
// needs a DNS or IP SAN; a Client certificate has clientAuth only. Key usage
// is digitalSignature (plus keyEncipherment for RSA server keys). Serials are
// random 128-bit numbers; subject and authority key identifiers are set.
// CA.SignCSR certifies the public key of a CSR, taking only its key and
// SANs. CA.CRL signs a revocation list. Tests across the project build their
// PKI at test time with these functions.
//
// # On disk
//
// A Dir is a CA kept in a directory (created 0700):
//
//	ca.crt, ca.key     the issuing CA: its certificate and key
//	root.crt, root.key only with an intermediate: the root that signed ca.crt
//	NAME.crt, NAME.key for each issued NAME: the leaf followed by its chain, and its key
//	crl.pem            the CRL, written by Init and rewritten by Revoke and WriteCRL
//	index.json         every certificate issued (serial, name, kind, SANs, notAfter,
//	                   fingerprint, revocation time and reason) and the last CRL number
//
// The trust anchor that verifiers are given (the gateway's and the tunnel's
// --ca) is root.crt when the directory has an intermediate, ca.crt otherwise;
// Dir.TrustAnchorPath names it. Keys are written 0600 and certificates 0644,
// each atomically (temporary file, then rename). No existing file is
// overwritten unless force is set.
//
// # Concurrency
//
// CA and Issued values are immutable once built and safe for concurrent use.
// A Dir serializes its own methods with a mutex, but two processes working
// on the same directory are not coordinated.
package pki
