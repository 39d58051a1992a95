// Package enroll is the enrollment service of portcullis and its client:
// it turns a user's certificate signing request into a short-lived client
// certificate, on the strength of an OpenPGP signature by a key the
// organisation already trusts, renews certificates over mutual TLS, and
// lets admins revoke them.
//
// # The service
//
// A Server sits in front of a pki.Dir. Its API (JSON over HTTPS, TLS 1.3):
//
//	POST /v1/certificates  a signed issue request (see Request, Envelope): the
//	                       signer must be in the users keyring; the identity
//	                       (CN NAME, email SAN, URI spiffe://ORG/user/NAME)
//	                       comes from the signer's key, never from the CSR
//	POST /v1/renew         over mTLS with a valid, unrevoked certificate the
//	                       service issued (URI spiffe://ORG/user/NAME) whose
//	                       name still has an unrevoked, unexpired key in the
//	                       users keyring: a new certificate, same identity,
//	                       the CSR's new key
//	POST /v1/revocations   a signed revoke request by an admin key: the index
//	                       and crl.pem are rewritten
//	GET  /v1/certificates  a signed list request by an admin key (headers)
//	GET  /v1/crl           the CRL, DER, or PEM with ?format=pem
//	GET  /v1/ca            the CA bundle, PEM
//
// Every refusal is a JSON error with its own Code and an audit event
// ("enroll_refused"); every success an audit event too.
//
// A signed request is accepted once (its nonce is remembered for as long
// as its time is in the window), within ±5 minutes of the service's clock,
// for the one endpoint its op names.
//
// # The client
//
// Login makes a key and a CSR and obtains the first certificate, signed by
// a Signer (GPGSigner runs gpg --detach-sign; KeySigner uses a key file),
// into a Store ($XDG_CONFIG_HOME/portcullis). A Renewer renews it at two
// thirds of its life.
package enroll
