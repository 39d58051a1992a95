package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

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
	Policy       string         `flag:"policy" meta:"FILE" help:"the gateway's YAML policy (routes, identities, networks)"`
	Allow        []acl.Rule     `flag:"allow" meta:"RULES" sep:"," problem:"invalid network rules" forms:"IP addresses and CIDR prefixes separated by commas, \"!\" in front to deny, e.g. 10.0.0.0/8,!10.9.0.0/16,192.168.1.7,::1 (0.0.0.0/0,::/0 is every address)" help:"the gateway's --allow network rules, when not in the policy"`
	AllowFile    string         `flag:"allow-file" meta:"FILE" help:"the gateway's --allow-file, when not in the policy"`
	Routes       []config.Route `flag:"route" meta:"NAME=HOST:PORT" help:"the gateway's --route backends, without a policy" forms:"NAME=HOST:PORT, NAME=builtin:echo or NAME=builtin:discard, e.g. pg=db.internal:5432"`
	AllowIDs     []conn.Pattern `flag:"allow-id" meta:"PATTERN" problem:"invalid identity pattern" help:"the gateway's --allow-id identities, without a policy"`
	DefaultRoute string         `flag:"default-route" meta:"NAME" help:"the gateway's --default-route, without a policy"`
	CA           string         `flag:"ca" meta:"FILE" help:"the gateway's --ca: also check the certificate's chain, validity and EKU"`
	CRL          string         `flag:"crl" meta:"FILE" help:"the gateway's --crl: also check that no certificate of the chain is revoked (needs --ca)"`
	Cert         string         `flag:"cert" meta:"FILE" help:"the client certificate to explain, PEM (required; intermediates after it are used)"`
	From         string         `flag:"from" meta:"ADDR" help:"the connection's source address (required)"`
	Only         string         `flag:"only" meta:"NAME" help:"explain this route only"`
}

func (*explainSettings) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway explain (--policy FILE | --allow RULES --route NAME=HOST:PORT --allow-id PATTERN) --cert CLIENT.crt --from ADDR [--only NAME]",
		Intro: `Say, offline, what a gateway with these rules would do with a client holding CLIENT.crt
connecting from ADDR: the network gate's decision and its rule, the identity as the gateway
reads it, and for each route (or --only) allowed or refused and the rule that decided.
The rules are the gateway's own settings: a --policy file, or the flags --allow,
--allow-file, --route, --allow-id and --default-route, as "gateway run" takes them. With
--ca (and --crl) the certificate's chain, validity, EKU and revocation are checked too.
Exit status: 0 when some route is allowed, 3 when everything is refused, 1 for bad settings.`,
		Examples: []string{
			"gateway explain --policy /etc/portcullis/policy.yaml --ca clients-ca.crt --crl crl.pem \\",
			"    --cert alice.crt --from 10.1.2.3 --only pg",
			"gateway explain --allow 10.0.0.0/8 --route pg=db:5432 --allow-id 'uri:spiffe://corp/*' \\",
			"    --cert alice.crt --from 10.1.2.3",
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
	if s.Cert == "" || s.From == "" {
		return fmt.Errorf("%w: --cert and --from are required (see gateway explain --help)", config.ErrInvalid)
	}
	if s.CRL != "" && s.CA == "" {
		return fmt.Errorf("%w: --crl needs --ca: the CRL is checked against the verified chain", config.ErrInvalid)
	}
	from, err := netip.ParseAddr(s.From)
	if err != nil {
		return fmt.Errorf("%w: --from %q: want an IPv4 or IPv6 address, e.g. 10.1.2.3 or ::1", config.ErrInvalid, s.From)
	}
	certs, err := conn.LoadCerts(s.Cert)
	if err != nil {
		return fmt.Errorf("--cert: %w", err)
	}
	g := &config.Gateway{Policy: s.Policy, Allow: s.Allow, AllowFile: s.AllowFile, Routes: s.Routes,
		AllowIDs: s.AllowIDs, DefaultRoute: s.DefaultRoute, DialTimeout: time.Second}
	req := gateway.ExplainRequest{Config: g.ServerConfig(nil), Cert: certs[0], Chain: certs[1:], From: from, Route: s.Only}
	if s.CA != "" {
		cas, err := conn.LoadCerts(s.CA)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		req.CAs = x509Pool(cas)
		if s.CRL != "" {
			crl, warnings, err := conn.LoadCRL(s.CRL, cas, time.Now())
			if err != nil {
				return fmt.Errorf("--crl: %w", err)
			}
			for _, w := range warnings {
				fmt.Fprintf(stderr, "gateway explain: --crl: %s\n", w)
			}
			req.CRL = crl
		}
	}
	allowed, err := gateway.Explain(stdout, req)
	if errors.Is(err, gateway.ErrNoSuchRoute) {
		return fmt.Errorf("%w: --only: %w", config.ErrInvalid, err)
	}
	if err != nil {
		return err
	}
	if !allowed {
		return &exitError{code: 3, err: errRefused}
	}
	return nil
}
