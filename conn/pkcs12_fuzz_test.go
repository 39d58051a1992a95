package conn_test

import (
	"os"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/portcullis-gw/portcullis/conn"
	"github.com/portcullis-gw/portcullis/internal/testpki"
)

// FuzzPKCS12 feeds arbitrary bytes to the PKCS#12 detection and loader:
// neither may panic, and a bundle that loads has a leaf and a key.
func FuzzPKCS12(f *testing.F) {
	p := testpki.New(f)
	good, err := pkcs12.Modern.Encode(p.Client.Issued.Key, p.Client.Issued.Cert, nil, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(p.Client.Issued.Cert.Raw) // DER certificate: not a bundle
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = conn.IsPKCS12Data(data)
		file := filepath.Join(dir, "b.p12")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cert, err := conn.LoadPKCS12(file, "")
		if err == nil && (cert.Leaf == nil || cert.PrivateKey == nil || len(cert.Certificate) == 0) {
			t.Errorf("loaded without a leaf or key: %+v", cert)
		}
	})
}
