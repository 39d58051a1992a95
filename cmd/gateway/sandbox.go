package main

import (
	"fmt"
	"net"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/internal/sandbox"
)

// restrictSelf sandboxes the started gateway with Landlock (unless
// --no-landlock): its files, its backends' ports, its bound ports. The log
// says what is in force, or that Landlock is unavailable.
func restrictSelf(cfg *config.Gateway, log *zerolog.Logger, bound []net.Addr) error {
	if cfg.NoLandlock {
		log.Info().Str("event", "sandbox").Str("landlock", "off").Msg("Landlock sandbox turned off (--no-landlock)")
		return nil
	}
	pol, err := cfg.BuildPolicy() // loaded once already by the server
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	sp := cfg.Sandbox(pol, bound...)
	res, err := sandbox.Restrict(sp)
	if err != nil {
		return fmt.Errorf("%w (--no-landlock runs without the sandbox)", err)
	}
	if res.ABI == 0 {
		log.Warn().Str("event", "sandbox").Str("landlock", "unavailable").
			Msg("Landlock is not available in this kernel: the gateway runs without its sandbox")
		return nil
	}
	ev := log.Info().Str("event", "sandbox").Str("landlock", "on").Int("abi", res.ABI).
		Strs("read_dirs", res.Dirs).Strs("read_files", res.SystemFiles)
	if res.Network {
		ports := make([]int, 0, len(sp.ConnectTCP))
		for _, p := range sp.ConnectTCP {
			ports = append(ports, int(p))
		}
		binds := make([]int, 0, len(sp.BindTCP))
		for _, p := range sp.BindTCP {
			binds = append(binds, int(p))
		}
		ev = ev.Ints("connect_ports", ports).Ints("bind_ports", binds)
	}
	ev.Bool("network", res.Network).Msg("sandboxed with Landlock: a reload that names new files or backend ports needs a restart")
	return nil
}
