package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/internal/testnet"
	"github.com/portcullis-gw/portcullis/pki"
)

// renewStore is a store holding a client certificate of a CA of its own
// (one the service does not know), renewing from url, and past two thirds
// of its life: a Renewer tries at once.
func renewStore(t *testing.T, url string, caPEM []byte) Store {
	t.Helper()
	other, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	iss, err := other.Issue(pki.Request{Kind: pki.Client, Name: "alice", URIs: []string{"spiffe://corp/user/alice"},
		NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	st := Store{Dir: t.TempDir()}
	if err := st.SaveLogin(State{URL: url}, caPEM, iss.Key, iss.CertPEM()); err != nil {
		t.Fatal(err)
	}
	return st
}

// renewEvent returns the first log line of logs whose event is name.
func renewEvent(logs string, name string) map[string]any {
	for _, line := range strings.Split(logs, "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["event"] == name {
			return ev
		}
	}
	return nil
}

// checkTimeLeft checks that ev carries time_left_ms as milliseconds: a
// number up to the hour the certificate of renewStore has left.
func checkTimeLeft(t *testing.T, ev map[string]any) {
	t.Helper()
	ms, ok := ev["time_left_ms"].(float64)
	if !ok || ms <= 0 || ms > float64(time.Hour.Milliseconds()) {
		t.Errorf("%s: time_left_ms = %v, want milliseconds left: %v", ev["event"], ev["time_left_ms"], ev)
	}
	if _, ok := ev["time_left"]; ok {
		t.Errorf("%s still logs time_left: %v", ev["event"], ev)
	}
}

// A failed renewal and a refused one log the time left in time_left_ms.
func TestRenewerTimeLeft(t *testing.T) {
	t.Run("failed", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens: each attempt fails
		logs := new(testnet.SyncBuffer)
		r := &Renewer{Store: renewStore(t, "https://"+addr, nil), Log: zerolog.New(logs), MinRetry: time.Millisecond, MaxRetry: time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for renewEvent(logs.String(), "renew_failed") == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		ev := renewEvent(logs.String(), "renew_failed")
		if ev == nil {
			t.Fatalf("no renew_failed event:\n%s", logs.String())
		}
		checkTimeLeft(t, ev)
	})
	t.Run("refused", func(t *testing.T) {
		k := makeKeys(t)
		s := startService(t, Config{UsersKeyring: k.users, AdminKeyring: k.admins})
		r := &Renewer{Store: renewStore(t, s.url, s.ca), Log: zerolog.New(s.logs)}
		err := r.Run(context.Background())
		if !errors.Is(err, &Error{Code: CodeCertUnknown}) {
			t.Fatalf("renewal of a certificate of another CA: %v", err)
		}
		ev := renewEvent(s.logs.String(), "renew_refused")
		if ev == nil {
			t.Fatalf("no renew_refused event:\n%s", s.logs.String())
		}
		checkTimeLeft(t, ev)
	})
}
