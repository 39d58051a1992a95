package config

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/settings"
)

// EnrollServe holds the settings of "gateway enroll serve". Its variables
// have the gateway's prefix: --users-keyring is GATEWAY_USERS_KEYRING.
type EnrollServe struct {
	PKIDir
	Listen       string        `flag:"listen" meta:"ADDR" default:"127.0.0.1:8444" help:"address of the HTTPS API" forms:"HOST:PORT, e.g. 127.0.0.1:8444 or :8444"`
	Cert         string        `flag:"cert" meta:"FILE" help:"the service's server certificate chain, PEM (required; gateway pki issue --server makes one)" forms:"a readable PEM file, e.g. --cert ./ca/enroll.crt"`
	Key          string        `flag:"key" meta:"FILE" help:"its private key, PEM (required)" forms:"a readable PEM file, e.g. --key ./ca/enroll.key"`
	UsersKeyring string        `flag:"users-keyring" meta:"FILE" help:"OpenPGP public keys of the users who may obtain certificates, armored or binary (gpg --export); read again when it changes (required)" forms:"a readable keyring file, e.g. --users-keyring users.gpg"`
	AdminKeyring string        `flag:"admin-keyring" meta:"FILE" help:"OpenPGP public keys of the admins who may revoke and list, armored or binary; keep them apart from the users' (required)" forms:"a readable keyring file, e.g. --admin-keyring admins.gpg"`
	UsersMap     string        `flag:"users-map" meta:"FILE" help:"optional YAML mapping keys (fingerprint or email) to names and per-user ttl/max_ttl; without it a key's name is its email's local part" forms:"a readable YAML file, e.g. --users-map users.yaml"`
	Org          string        `flag:"org" meta:"DOMAIN" help:"SPIFFE trust domain of the identities: certificates carry uri:spiffe://DOMAIN/user/NAME (required)" forms:"a trust domain such as corp or example.com"`
	TTL          time.Duration `flag:"ttl" default:"18h" help:"lifetime of a certificate whose request asks for none (at least 10s)"`
	MaxTTL       time.Duration `flag:"max-ttl" default:"24h" help:"the longest lifetime a request may ask for; longer ones are cut to it (0: only the CA's expiry)"`
	LogLevel     string        `flag:"log-level" meta:"LEVEL" default:"info" help:"least severe events logged: debug, info, warn or error" forms:"debug, info, warn or error"`
	LogFormat    string        `flag:"log-format" meta:"FORMAT" default:"json" help:"log output (the audit trail): json (one object per line) or console" forms:"console or json"`
}

var enrollSettings = sync.OnceValue(func() map[string]*settings.Setting {
	return settings.Index[EnrollServe](GatewayPrefix)
})

// Doc describes "gateway enroll serve" for --help.
func (*EnrollServe) Doc() settings.Doc {
	return settings.Doc{
		Usage: "gateway enroll serve --dir DIR --org DOMAIN --users-keyring FILE --admin-keyring FILE [flags]",
		Intro: `Run the enrollment service in front of the CA in DIR: users obtain short-lived
client certificates with "tunnel login", signing the request with an OpenPGP key
of --users-keyring; the certificate's identity (CN NAME, email SAN, URI
spiffe://ORG/user/NAME) comes from that key, never from the request. tunnel
forward renews before expiry over mutual TLS with the current certificate.
Admins (keys of --admin-keyring) revoke through the API: DIR/index.json and
DIR/crl.pem are rewritten, and gateways given --crl DIR/crl.pem reload it.

API (HTTPS, TLS 1.3): POST /v1/certificates, POST /v1/renew,
POST /v1/revocations, GET /v1/certificates, GET /v1/crl (?format=pem), GET /v1/ca.
Every request and refusal is an audit event on stderr (JSON). Keep the service
apart from the gateways: it holds the CA key.`,
		Examples: []string{
			"gpg --export alice@example.com bob@example.com > users.gpg",
			"gpg --export security@example.com > admins.gpg",
			"gateway pki issue --dir ./ca --server --name enroll --dns enroll.example.com",
			"gateway enroll serve --dir ./ca --cert ca/enroll.crt --key ca/enroll.key \\",
			"    --users-keyring users.gpg --admin-keyring admins.gpg --org example.com --listen :8444",
		},
	}
}

// EnrollCommands returns a new, empty settings struct of each "gateway
// enroll" command, by name (for the list of variables).
func EnrollCommands() map[string]any { return map[string]any{"serve": &EnrollServe{}} }

// ParseEnrollServe parses and validates the settings of "gateway enroll
// serve" (see ParsePKIInit for lookup, usage and the errors).
func ParseEnrollServe(args []string, lookup func(string) (string, bool), usage io.Writer) (*EnrollServe, error) {
	s := new(EnrollServe)
	rest, err := settings.Parse("gateway enroll serve", GatewayPrefix, s, args, lookup, usage)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, settings.Invalidf("gateway enroll serve: unexpected argument %s: it takes flags only (see --help)", settings.Quote(rest[0]))
	}
	return s, s.Validate()
}

// Validate checks the settings; every problem is reported, joined.
func (s *EnrollServe) Validate() error {
	set := enrollSettings()
	var errs []error
	add := func(e *settings.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	add(s.PKIDir.check(set))
	if _, _, err := splitHostPort(s.Listen, true, anyPort); err != nil {
		add(set["Listen"].Fail(s.Listen, "not a listen address", err))
	}
	add(settings.RequiredFile(set["Cert"], s.Cert))
	add(settings.RequiredFile(set["Key"], s.Key))
	add(settings.RequiredFile(set["UsersKeyring"], s.UsersKeyring))
	add(settings.RequiredFile(set["AdminKeyring"], s.AdminKeyring))
	add(settings.OptionalFile(set["UsersMap"], s.UsersMap))
	switch {
	case s.Org == "":
		add(set["Org"].Fail("", "required: the SPIFFE trust domain of the identities", nil))
	case strings.ContainsAny(s.Org, "/:@ \t") || strings.Trim(s.Org, ".") != s.Org:
		add(set["Org"].Fail(s.Org, "not a trust domain (no scheme, path, port or blanks)", nil))
	}
	const minTTL = 10 * time.Second
	if s.TTL < minTTL {
		add(set["TTL"].Fail(s.TTL.String(), fmt.Sprintf("below %s: renewal at two thirds of the life needs a few seconds", minTTL), nil))
	}
	if s.MaxTTL != 0 && s.MaxTTL < minTTL {
		add(set["MaxTTL"].Fail(s.MaxTTL.String(), fmt.Sprintf("below %s (0 means no cap)", minTTL), nil))
	}
	// A --ttl above --max-ttl would be cut without a word; the default
	// --ttl follows a lower --max-ttl.
	if def, _ := time.ParseDuration(set["TTL"].Default()); s.MaxTTL >= minTTL && s.TTL > s.MaxTTL && s.TTL != def {
		e := set["TTL"].Fail(s.TTL.String(), fmt.Sprintf("above --max-ttl %s (%s): the default lifetime cannot be longer than the longest", s.MaxTTL, set["MaxTTL"].Env()), nil)
		e.Want = "a --ttl at most --max-ttl, or a longer --max-ttl"
		add(e)
	}
	add(settings.OneOf(set["LogLevel"], s.LogLevel, logLevels()))
	add(settings.OneOf(set["LogFormat"], s.LogFormat, logFormats()))
	return errors.Join(errs...)
}
