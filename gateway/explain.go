package gateway

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/mux"
)

// ExplainRequest is what `gateway explain` asks: would a client holding
// Cert, connecting from From, be admitted, and to which routes?
type ExplainRequest struct {
	Config Config               // the gateway's: its Policy is explained (its Credentials are not used)
	Cert   *x509.Certificate    // the client's certificate
	Chain  []*x509.Certificate  // intermediates sent with it, if any
	CAs    *x509.CertPool       // when set, the chain is verified as the gateway would (EKU clientAuth, validity)
	CRL    *conn.RevocationList // when set, a certificate of the verified chain that it lists is refused
	At     time.Time            // when to verify; zero means now
	From   netip.Addr           // source address
	Route  string               // one route, or "" for all
}

// ErrNoSuchRoute is Explain's error for a Route the policy does not have.
var ErrNoSuchRoute = errors.New("no such route")

// Explain writes, for people, the network gate's decision, the identity as
// the gateway reads it, and for each route (or the one asked) whether it is
// allowed and which rule decided. It uses the same decision functions as
// the running gateway, offline. It returns an error only for settings that
// do not load (or an unknown Route); a refusal is an answer, not an error.
func Explain(w io.Writer, req ExplainRequest) (allowed bool, err error) {
	if req.Config.Policy == nil {
		return false, errors.New("gateway: ExplainRequest.Config.Policy is required")
	}
	pol, err := req.Config.Policy.Load()
	if err != nil {
		return false, err
	}
	var names []string
	for _, r := range pol.Routes() {
		names = append(names, r.Name)
	}
	if req.Route != "" {
		if pol.Route(req.Route) == nil {
			return false, fmt.Errorf("%w: %q; routes: %s", ErrNoSuchRoute, req.Route, strings.Join(names, ", "))
		}
		names = []string{req.Route}
	}
	from := req.From.Unmap()
	gate := pol.Gate().Decide(from)
	fmt.Fprintf(w, "source address %s\n  network gate (%s): %s\n", from, pol.GateSource(), gate)

	id := conn.IdentityOf(req.Cert)
	fmt.Fprintf(w, "certificate\n%s", id.Describe())
	chainOK := true
	if req.CAs != nil {
		at := req.At
		if at.IsZero() {
			at = time.Now()
		}
		opts := x509.VerifyOptions{Roots: req.CAs, Intermediates: x509.NewCertPool(), CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		for _, c := range req.Chain {
			opts.Intermediates.AddCert(c)
		}
		chains, err := req.Cert.Verify(opts)
		switch {
		case err != nil:
			chainOK = false
			fmt.Fprintf(w, "  chain: REFUSED at the handshake: %v\n", err)
		case req.CRL != nil && revokedIn(req.CRL, chains):
			chainOK = false
			fmt.Fprintf(w, "  chain: REFUSED at the handshake: a certificate of the chain is revoked (listed in the CRL)\n")
		default:
			fmt.Fprintf(w, "  chain: verified (clientAuth, valid at %s)\n", at.UTC().Format(time.RFC3339))
		}
	} else {
		fmt.Fprintf(w, "  chain: not checked (give the CA bundle to check it)\n")
	}

	fmt.Fprintln(w, "routes")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var reachable []string
	for _, name := range names {
		v := authorize(pol, &id, name, from)
		switch {
		case !gate.Allowed:
			fmt.Fprintf(tw, "  %s\trefused\tthe network gate closes the connection first\n", name)
		case !chainOK:
			fmt.Fprintf(tw, "  %s\trefused\tthe certificate fails the handshake\n", name)
		case v.status != mux.StatusOK:
			fmt.Fprintf(tw, "  %s\trefused\t%s: %s\n", name, v.status, v.rule)
		default:
			fmt.Fprintf(tw, "  %s\tallowed\t%s\n", name, v.rule)
			reachable = append(reachable, name)
		}
	}
	tw.Flush()
	if d := pol.DefaultRoute(); d != "" {
		fmt.Fprintf(w, "default route (direct mode, SNI naming no route): %s\n", d)
	}
	if len(reachable) == 0 {
		fmt.Fprintln(w, "verdict: refused")
		return false, nil
	}
	fmt.Fprintf(w, "verdict: may reach %s\n", strings.Join(reachable, ", "))
	return true, nil
}

// revokedIn reports whether crl lists a certificate of the chains.
func revokedIn(crl *conn.RevocationList, chains [][]*x509.Certificate) bool {
	for _, chain := range chains {
		for _, c := range chain {
			if crl.Revoked(c) {
				return true
			}
		}
	}
	return false
}
