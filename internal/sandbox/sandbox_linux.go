package sandbox

import (
	"fmt"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// config is the Landlock configuration asked for: ABI 5 (file access,
// TCP bind and connect, ioctl on devices), degraded to what the kernel
// has. Later ABIs add kinds of access (signals, abstract and named UNIX
// sockets) that would also cut the notify socket off, and are not asked
// for.
var config = landlock.V5.BestEffort()

// Restrict applies p to the whole process.
func Restrict(p Policy) (Result, error) {
	abi, err := llsys.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		return Result{}, nil // no Landlock in this kernel: nothing to do
	}
	res := Result{ABI: abi, Files: true, Network: abi >= 4, Dirs: dirs(p.Files), SystemFiles: existing(p.SystemFiles)}
	rules := []landlock.Rule{landlock.RODirs(res.Dirs...), landlock.ROFiles(res.SystemFiles...)}
	for _, port := range p.ConnectTCP {
		rules = append(rules, landlock.ConnectTCP(port))
	}
	for _, port := range p.BindTCP {
		rules = append(rules, landlock.BindTCP(port))
	}
	if err := config.Restrict(rules...); err != nil {
		return Result{}, fmt.Errorf("landlock: %w", err)
	}
	return res, nil
}
