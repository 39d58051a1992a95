// Package aclbench compares the network allow-list of package acl with
// other IP prefix membership structures: github.com/gaissmai/bart (Fast and
// Lite), go4.org/netipx (IPSet) and a linear scan. It is a separate module
// so that the gateway does not depend on the libraries it is compared with.
//
// The data are random but reproducible (fixed seeds): see Prefixes4,
// Prefixes6 and Queries. The benchmarks and the agreement test are in the
// _test.go files; RESULTS.md holds measured numbers and how to reproduce
// them.
package aclbench
