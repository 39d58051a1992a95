package conn

import "time"

// SetGateClock replaces the clock of g's deny-log rate limit. Call it
// before g is used.
func SetGateClock(g *Gate, now func() time.Time) { g.now = now }

// IsPKCS12Data is the content test of IsPKCS12.
var IsPKCS12Data = isPKCS12Data

// LoadPKCS12 reads a PKCS#12 bundle with the password in passFile.
var LoadPKCS12 = loadPKCS12

// ChainsBuilt is the number of client chains st verified itself, not
// finding them in its cache.
func ChainsBuilt(st *ServerState) int64 {
	if st.chains == nil {
		return 0
	}
	return st.chains.built.Load()
}

// CachedChains is the number of client chains st's cache holds.
func CachedChains(st *ServerState) int {
	if st.chains == nil {
		return 0
	}
	return st.chains.len()
}
