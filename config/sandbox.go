package config

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/portcullis-gw/portcullis/internal/sandbox"
	"github.com/portcullis-gw/portcullis/policy"
)

// resolverFiles are the files Go's DNS resolver reads again while the
// gateway runs.
func resolverFiles() []string {
	return []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf"}
}

// Sandbox is what the running gateway needs and nothing more: reading its
// files (--cert, --key, --key-pass-file, --ca, --crl, --allow-file,
// --policy, and their directories) and the resolver's, connecting TCP to
// the ports of the backends of pol (and to port 53 when a backend is a
// host name, for DNS over TCP), and binding the ports of the addresses it
// listens on (bound).
func (g *Gateway) Sandbox(pol *policy.Policy, bound ...net.Addr) sandbox.Policy {
	sp := sandbox.Policy{
		Files:       []string{g.Cert, g.Key, g.KeyPassFile, g.CA, g.CRL, g.AllowFile, g.Policy},
		SystemFiles: resolverFiles(),
	}
	ports := map[uint16]bool{}
	if pol != nil {
		for _, r := range pol.Routes() {
			if r.IsBuiltin() {
				continue
			}
			host, port, err := net.SplitHostPort(r.Backend)
			if err != nil {
				continue // policy.Build checked it
			}
			if n, err := strconv.ParseUint(port, 10, 16); err == nil {
				ports[uint16(n)] = true
			}
			if _, err := netip.ParseAddr(host); err != nil {
				ports[53] = true
			}
		}
	}
	for p := range ports {
		sp.ConnectTCP = append(sp.ConnectTCP, p)
	}
	for _, a := range bound {
		if t, ok := a.(*net.TCPAddr); ok && t.Port > 0 {
			sp.BindTCP = append(sp.BindTCP, uint16(t.Port))
		}
	}
	return sp
}
