package config

import (
	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/settings"
)

// checkKey checks the --key of a --cert: required with a PEM certificate,
// refused with a PKCS#12 bundle (which holds its own key).
func checkKey(s *settings.Setting, cert, key string) *settings.Error {
	if cert == "" || !conn.IsPKCS12(cert) {
		return settings.RequiredFile(s, key)
	}
	if key != "" {
		e := s.Fail(key, "given with a PKCS#12 --cert, which holds its own key", nil)
		e.Want = "no --key with a .p12 or .pfx --cert (its password goes to --key-pass-file)"
		return e
	}
	return nil
}
