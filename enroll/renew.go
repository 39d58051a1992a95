package enroll

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/pki"
)

// Login makes a new key and CSR, has the service certify it on the
// strength of s's signature, and writes the result to store (the CA
// bundle caPEM with it). ttl 0 asks for the default.
func Login(ctx context.Context, store Store, url string, caPEM []byte, s Signer, ttl time.Duration) (*Issued, error) {
	c, err := NewClient(ClientOptions{URL: url, CA: caPEM})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	key, csr, err := NewCSR()
	if err != nil {
		return nil, err
	}
	out, err := c.Issue(ctx, s, csr, ttl)
	if err != nil {
		return nil, err
	}
	st := State{URL: url}
	if ttl > 0 {
		st.TTL = ttl.String()
	}
	if err := store.SaveLogin(st, caPEM, key, []byte(out.Certificate)); err != nil {
		return nil, err
	}
	return out, nil
}

// Renewer keeps the certificate of a Store fresh: at two thirds of its
// life it renews it over mTLS, writes it, and calls Renewed.
type Renewer struct {
	Store Store
	Log   zerolog.Logger
	// Renewed is called after each renewal, once the files are written:
	// to load them and move new streams to them.
	Renewed func(*Issued)
	// MinRetry and MaxRetry bound the wait between failed attempts;
	// defaults 1s and 5m. The wait never runs past the expiry.
	MinRetry, MaxRetry time.Duration
}

// Run renews until ctx ends, or until the service refuses for good (the
// certificate revoked, the user removed, the certificate expired): then it
// logs what to do and returns the refusal.
func (r *Renewer) Run(ctx context.Context) error {
	if r.MinRetry <= 0 {
		r.MinRetry = time.Second
	}
	if r.MaxRetry <= 0 {
		r.MaxRetry = 5 * time.Minute
	}
	failures := 0
	for {
		leaf, err := r.Store.Leaf()
		if err != nil {
			r.Log.Error().Str("event", "renew_failed").Err(err).Msg("cannot read the certificate to renew")
			return err
		}
		wait := time.Until(RenewAt(leaf))
		if failures > 0 {
			wait = min(r.MinRetry<<min(failures-1, 16), r.MaxRetry)
			if left := time.Until(leaf.NotAfter); left > 0 {
				wait = min(wait, max(left/3, 100*time.Millisecond))
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		out, err := r.renewOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failures = 0
			r.Log.Info().Str("event", "renewed").Str("serial", out.Serial).Str("name", out.Name).
				Time("not_after", out.NotAfter).Time("next_renewal", out.NotBefore.Add(out.NotAfter.Sub(out.NotBefore)*2/3)).
				Msg("certificate renewed; new connections use it")
			if r.Renewed != nil {
				r.Renewed(out)
			}
			continue
		}
		failures++
		left := time.Until(leaf.NotAfter)
		var e *Error
		if errors.As(err, &e) && final(e.Code) {
			r.Log.Error().Str("event", "renew_refused").Str("code", string(e.Code)).Err(err).
				Str("serial", pki.FormatSerial(leaf.SerialNumber)).Dur("time_left_ms", left).
				Msg("the enrollment service refuses to renew this certificate: run tunnel login again")
			return err
		}
		ev := r.Log.Warn().Str("event", "renew_failed").Err(err).Int("failures", failures).
			Str("serial", pki.FormatSerial(leaf.SerialNumber))
		if left > 0 {
			ev.Dur("time_left_ms", left).Msg("renewal failed; retrying")
		} else {
			r.Log.Error().Str("event", "cert_expired").Time("not_after", leaf.NotAfter).
				Msg("the certificate expired before it could be renewed: run tunnel login again")
			return fmt.Errorf("certificate expired at %s: run tunnel login again", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
}

// final reports whether a refusal would be met again by a retry.
func final(c Code) bool {
	switch c {
	case CodeCertRevoked, CodeCertUnknown, CodeNotEnrolled, CodeCertExpired, CodeUserRemoved, CodeKeyRevoked, CodeKeyExpired, CodeNoClientCert:
		return true
	}
	return false
}

// renewOnce renews the certificate of the store now.
func (r *Renewer) renewOnce(ctx context.Context) (*Issued, error) {
	st, err := r.Store.LoadState()
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(r.Store.CAPath())
	if err != nil {
		return nil, err
	}
	return Renew(ctx, r.Store, st, ca)
}

// Renew renews the certificate of store now, over mTLS with it, and writes
// the new key and certificate.
func Renew(ctx context.Context, store Store, st State, caPEM []byte) (*Issued, error) {
	var ttl time.Duration
	if st.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(st.TTL); err != nil {
			return nil, fmt.Errorf("%s: ttl %q: %w", store.StatePath(), st.TTL, err)
		}
	}
	c, err := NewClient(ClientOptions{URL: st.URL, CA: caPEM, Certificate: store.TLSCertificate})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	key, csr, err := NewCSR()
	if err != nil {
		return nil, err
	}
	out, err := c.Renew(ctx, csr, ttl)
	if err != nil {
		return nil, err
	}
	if err := store.Save(key, []byte(out.Certificate)); err != nil {
		return nil, err
	}
	return out, nil
}
