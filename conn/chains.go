package conn

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// chainCache remembers the verified chains of the client certificates a
// ServerState has seen, so that a returning client's chain is not built
// and its signatures not checked again at every handshake: the most
// expensive part of verifying it, after the handshake's own signature.
// What may change with time is checked at every use: each certificate's
// validity period (here) and revocation (CheckRevoked). The cache belongs
// to one snapshot: a reload, which may change the CAs, starts a new one.
type chainCache struct {
	mu sync.Mutex
	m  map[[32]byte][][]*x509.Certificate

	built atomic.Int64 // chains verified here (not found in the cache), for tests
}

// maxCachedChains bounds the cache; when full it is emptied and refills
// with the clients that come back.
const maxCachedChains = 10000

// chainKey identifies the certificates a client presented.
func chainKey(certs []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, c := range certs {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(c.Raw)>>24), byte(len(c.Raw)>>16), byte(len(c.Raw)>>8), byte(len(c.Raw))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *chainCache) get(k [32]byte) [][]*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *chainCache) put(k [32]byte, chains [][]*x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedChains {
		c.m = make(map[[32]byte][][]*x509.Certificate)
	}
	c.m[k] = chains
}

func (c *chainCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// ClientChains returns the verified chains of a connection's client
// certificate: those crypto/tls built (a configuration from ServerConfig),
// or, for one from CachingServerConfig, those VerifyClient found or built.
// It verifies the certificate against this snapshot when neither has them
// (a connection handshaken under an earlier snapshot) and returns nil when
// that fails.
func (st *ServerState) ClientChains(cs tls.ConnectionState, now time.Time) [][]*x509.Certificate {
	if len(cs.VerifiedChains) > 0 || len(cs.PeerCertificates) == 0 {
		return cs.VerifiedChains
	}
	chains, err := st.verifyChains(cs.PeerCertificates, now)
	if err != nil {
		return nil
	}
	return chains
}

// VerifyClient is the VerifyConnection of the gateway's TLS configurations:
// it verifies the client's certificate chain when crypto/tls did not (a
// CachingServerConfig: chain to a CA of the bundle, validity, EKU
// clientAuth, the chains of a certificate seen before taken from the cache
// with their validity checked again), remembers the chains crypto/tls
// verified (a ServerConfig), and checks them against the CRL.
func (st *ServerState) VerifyClient(cs tls.ConnectionState) error {
	chains := cs.VerifiedChains
	switch {
	case len(cs.PeerCertificates) == 0:
		return errors.New("no client certificate") // ClientAuth requires one: not reached
	case len(chains) > 0:
		if st.chains != nil {
			st.chains.put(chainKey(cs.PeerCertificates), chains)
		}
	default:
		var err error
		if chains, err = st.verifyChains(cs.PeerCertificates, time.Now()); err != nil {
			return err
		}
	}
	return st.revoked(chains)
}

// verifyChains returns the chains of certs (the leaf first), from the cache
// when they were verified before and every certificate of one of them is
// valid at now, or verified anew (and cached).
func (st *ServerState) verifyChains(certs []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	var k [32]byte
	if st.chains != nil {
		k = chainKey(certs)
		if chains := st.chains.get(k); chains != nil {
			if valid := validAt(chains, now); len(valid) > 0 {
				return valid, nil
			}
		}
	}
	opts := x509.VerifyOptions{
		Roots:         st.ClientCAs,
		CurrentTime:   now,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if st.chains != nil {
		st.chains.built.Add(1)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return nil, &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	if st.chains != nil {
		st.chains.put(k, chains)
	}
	return chains, nil
}

// validAt returns the chains whose every certificate is valid at now.
func validAt(chains [][]*x509.Certificate, now time.Time) [][]*x509.Certificate {
	var out [][]*x509.Certificate
next:
	for _, chain := range chains {
		for _, c := range chain {
			if now.Before(c.NotBefore) || now.After(c.NotAfter) {
				continue next
			}
		}
		out = append(out, chain)
	}
	return out
}
