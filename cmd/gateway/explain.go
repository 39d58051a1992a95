package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/portcullis-gw/portcullis/acl"
	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/gateway"
	"github.com/portcullis-gw/portcullis/internal/settings"
)

// explainSettings are the flags of "gateway explain". Their variables have
// their own prefix, GATEWAY_EXPLAIN_, so a gateway's own GATEWAY_ROUTE (a
// backend) cannot be mistaken for explain's --route (a route name).
type explainSettings struct {
	Policy    string     `flag:"policy" meta:"FILE" help:"the gateway's YAML policy (routes, identities, networks) (required)"`
	Allow     []acl.Rule `flag:"allow" meta:"RULES" sep:"," problem:"invalid network rules" forms:"IP addresses and CIDR prefixes separated by commas, \"!\" in front to deny, e.g. 10.0.0.0/8,!10.9.0.0/16,192.168.1.7,::1 (0.0.0.0/0,::/0 is every address)" help:"the gateway's --allow network rules, when not in the policy"`
	AllowFile string     `flag:"allow-file" meta:"FILE" help:"the gateway's --allow-file, when not in the policy"`
	CA        string     `flag:"ca" meta:"FILE" help:"the gateway's --ca: also check the certificate's chain, validity and EKU"`
	Cert      string     `flag:"cert" meta:"FILE" help:"the client certificate to explain, PEM (required; intermediates after it are used)"`
	From      string     `flag:"from" meta:"ADDR" help:"the connection's source address (required)"`
	Route     string     `flag:"route" meta:"NAME" help:"explain this route only"`
}

func (*explainSettings) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway explain --policy FILE --cert CLIENT.crt --from ADDR [--route NAME]",
		Intro: `Say, offline, what a gateway with these rules would do with a client holding CLIENT.crt
connecting from ADDR: the network gate's decision and its rule, the identity as the gateway
reads it, and for each route (or --route) allowed or refused and the rule that decided.
Exit status: 0 when some route is allowed, 3 when everything is refused, 1 for bad settings.`,
		Examples: []string{
			"gateway explain --policy /etc/portcullis/policy.yaml --ca clients-ca.crt \\",
			"    --cert alice.crt --from 10.1.2.3 --route pg",
		},
	}
}

// explainPrefix starts the variables of "gateway explain".
const explainPrefix = "GATEWAY_EXPLAIN_"

func runExplain(args []string, stdout, stderr io.Writer) error {
	var s explainSettings
	if _, err := settings.Parse("gateway explain", explainPrefix, &s, args, os.LookupEnv, stdout); err != nil {
		return err
	}
	if s.Cert == "" || s.From == "" || s.Policy == "" {
		return fmt.Errorf("%w: --policy, --cert and --from are required (see gateway explain --help); "+
			"explain reads routes and identities from a policy file", config.ErrInvalid)
	}
	from, err := netip.ParseAddr(s.From)
	if err != nil {
		return fmt.Errorf("%w: --from %q: want an IPv4 or IPv6 address, e.g. 10.1.2.3 or ::1", config.ErrInvalid, s.From)
	}
	certs, err := conn.LoadCerts(s.Cert)
	if err != nil {
		return fmt.Errorf("--cert: %w", err)
	}
	req := gateway.ExplainRequest{
		Config: &config.Gateway{Policy: s.Policy, Allow: s.Allow, AllowFile: s.AllowFile},
		Cert:   certs[0], Chain: certs[1:], From: from, Route: s.Route,
	}
	if s.CA != "" {
		cas, err := conn.LoadCerts(s.CA)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		req.CAs = x509Pool(cas)
	}
	allowed, err := gateway.Explain(stdout, req)
	if err != nil {
		return err
	}
	if !allowed {
		return &exitError{code: 3, err: errRefused}
	}
	return nil
}
