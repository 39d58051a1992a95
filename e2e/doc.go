// Package e2e holds black-box tests of the built programs: TestMain builds
// bin/gateway and bin/tunnel from ./cmd into a temporary directory, and the
// tests run them as subprocesses on loopback addresses only, the way an
// operator and a user would: flags, environment, exit statuses, signals,
// log events on stderr, and real peers (openssl s_client, curl, psql and
// pgbench against a PostgreSQL the tests start, HAProxy and nginx as load
// balancers in front of several gateways and as readers of the PROXY header
// a route sends). The PKI is made at test time with "gateway pki" itself,
// plus internal/testpki for certificates the command refuses to make
// (expired, not yet valid, another CA).
//
// The package has no non-test code. Tests that need a tool that is not
// installed (openssl, curl, PostgreSQL, haproxy, nginx) skip with a message
// naming it; -short skips the slowest parts. Setting E2E_RACE=1 builds the
// programs with the race detector.
package e2e
