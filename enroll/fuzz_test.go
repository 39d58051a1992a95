package enroll

import (
	"bytes"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// FuzzParseRequest: the parser never panics, and what it accepts is
// canonical: written back, it is the same bytes.
func FuzzParseRequest(f *testing.F) {
	now := time.Date(2026, 12, 2, 11, 26, 15, 0, time.UTC)
	for _, r := range []Request{
		{Op: OpIssue, Time: now, Nonce: "00112233445566778899aabbccddeeff", TTL: 18 * time.Hour, CSR: []byte{0x30, 0x03, 0x02, 0x01, 0x01}},
		{Op: OpRevoke, Time: now, Nonce: "00112233445566778899aabbccddeeff", Serial: "5F3A0C", Reason: "keyCompromise"},
		{Op: OpRevoke, Time: now, Nonce: "00112233445566778899aabbccddeeff", Cert: []byte{1, 2, 3}, Reason: "unspecified"},
		{Op: OpList, Time: now, Nonce: "00112233445566778899aabbccddeeff"},
	} {
		f.Add(r.Marshal())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			return
		}
		if out := r.Marshal(); !bytes.Equal(out, data) {
			t.Fatalf("accepted %q but writes it back as %q", data, out)
		}
	})
}

// FuzzParseUserMap: the parser never panics, and what it accepts has valid
// names and keys, and reads back the same after being written out.
func FuzzParseUserMap(f *testing.F) {
	f.Add([]byte("users:\n  - key: 7D2B0C11AA22BB33CC44DD55EE66FF7788990011\n    name: alice\n    ttl: 8h\n    max_ttl: 1d\n  - email: bob@example.com\n    name: bob\n"))
	f.Add([]byte("users: []\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseUserMap(data)
		if err != nil {
			return
		}
		for _, u := range m.Users {
			if CheckUserName(u.Name) != nil || (u.Key == "") == (u.Email == "") {
				t.Fatalf("accepted entry %+v", u)
			}
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseUserMap(out)
		if err != nil {
			t.Fatalf("accepted %q, but not its rewrite %q: %v", data, out, err)
		}
		if len(m2.Users) != len(m.Users) {
			t.Fatalf("rewrite has %d entries, want %d", len(m2.Users), len(m.Users))
		}
	})
}

func TestParseUserMap(t *testing.T) {
	for _, bad := range []string{
		"users:\n  - name: alice\n",                        // neither key nor email
		"users:\n  - key: ABC\n    name: alice\n",          // short fingerprint
		"users:\n  - email: a@example.com\n    name: -x\n", // bad name
		"users:\n  - email: a@example.com\n    name: a\n  - email: A@example.com\n    name: b\n",
		"users:\n  - email: a@example.com\n    name: a\n    ttl: 2h\n    max_ttl: 1h\n",
		"users:\n  - email: a@example.com\n    name: a\n    ttl: 1s\n",
		"user:\n  - email: a@example.com\n",
	} {
		if _, err := ParseUserMap([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	m, err := ParseUserMap([]byte("users:\n  - key: 7d2b 0c11 aa22 bb33 cc44 dd55 ee66 ff77 8899 0011\n    name: alice\n    ttl: 1d\n"))
	if err != nil || m.Users[0].Key != "7D2B0C11AA22BB33CC44DD55EE66FF7788990011" || m.Users[0].ttl != 24*time.Hour {
		t.Fatalf("%+v %v", m, err)
	}
}
