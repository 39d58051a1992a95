package conn_test

import (
	"encoding"
	"errors"
	"testing"

	"github.com/portcullis-gw/portcullis/conn"
)

var (
	_ encoding.TextUnmarshaler = (*conn.Pattern)(nil)
	_ encoding.TextMarshaler   = conn.Pattern{}
)

func TestPatternText(t *testing.T) {
	for in, want := range map[string]string{
		"uri:spiffe://corp/app/*": "uri:spiffe://corp/app/*", " DNS:Db.Example.com ": "dns:db.example.com",
		"ANY": "any", "cn:alice": "cn:alice",
	} {
		var p conn.Pattern
		if err := p.UnmarshalText([]byte(in)); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", in, err)
		}
		b, err := p.MarshalText()
		if err != nil || string(b) != want {
			t.Errorf("UnmarshalText(%q) then MarshalText = %q, %v; want %q", in, b, err, want)
		}
		var back conn.Pattern
		if err := back.UnmarshalText(b); err != nil || back.String() != p.String() {
			t.Errorf("%q does not read back: %v, %v", b, back, err)
		}
	}
	var p conn.Pattern
	if err := p.UnmarshalText([]byte("alice")); !errors.Is(err, conn.ErrPattern) || !p.IsZero() {
		t.Errorf("bad pattern: err %v, pattern %v; want ErrPattern and the zero Pattern", err, p)
	}
}
