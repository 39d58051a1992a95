// Package systemd is the gateway's glue to the service manager: readiness,
// reload and stop notifications and the watchdog over the notify socket
// (sd_notify), and listeners passed by socket activation (LISTEN_FDS).
//
// It builds on github.com/coreos/go-systemd/v22 (packages daemon and
// activation): both are small, depend on the standard library only, and
// already handle the details (abstract notify sockets, LISTEN_PID,
// close-on-exec of the passed descriptors) that a few lines of our own would
// have to get right again. Without systemd (no NOTIFY_SOCKET, no LISTEN_FDS)
// every function here does nothing.
package systemd

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to the service manager. The zero Notifier
// is ready to use; it is safe for concurrent use.
type Notifier struct{}

// send writes one notification. It reports whether a notify socket was
// there to take it; a missing one is not an error.
func (Notifier) send(state string) (bool, error) {
	return daemon.SdNotify(false, state)
}

// Ready says the service is up: its listener is bound and its
// configuration loaded.
func (n Notifier) Ready() error {
	_, err := n.send(daemon.SdNotifyReady)
	return err
}

// Reloading says a reload has begun (with the CLOCK_MONOTONIC time in
// microseconds, as systemd 253 and later want); send Ready when it is done,
// whatever its outcome.
func (n Notifier) Reloading() error {
	state := daemon.SdNotifyReloading
	if us, ok := monotonicUsec(); ok {
		state += "\nMONOTONIC_USEC=" + strconv.FormatUint(us, 10)
	}
	_, err := n.send(state)
	return err
}

// Stopping says the service is shutting down.
func (n Notifier) Stopping() error {
	_, err := n.send(daemon.SdNotifyStopping)
	return err
}

// WatchdogInterval is the watchdog timeout the service manager set for
// this process (WATCHDOG_USEC, for this pid), or 0 when there is none.
func WatchdogInterval() (time.Duration, error) {
	return daemon.SdWatchdogEnabled(false)
}

// Watchdog sends WATCHDOG=1 every half of the watchdog timeout until ctx
// ends, and returns at once when no watchdog is set. alive, when not nil,
// is asked first each time: a false answer skips that keep-alive, so that
// a process that has stopped working is restarted.
func (n Notifier) Watchdog(ctx context.Context, alive func() bool) error {
	d, err := WatchdogInterval()
	if err != nil || d <= 0 {
		return err
	}
	t := time.NewTicker(d / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if alive != nil && !alive() {
				continue
			}
			if _, err := n.send(daemon.SdNotifyWatchdog); err != nil {
				return err
			}
		}
	}
}

// Listener returns the first socket passed by socket activation (LISTEN_FDS
// and LISTEN_PID naming this process), and how many sockets were passed in
// all; (nil, 0, nil) without socket activation. The environment variables
// are unset, so that child processes do not take the sockets for theirs.
// Descriptors that are not stream sockets are an error; passed sockets
// after the first are closed.
func Listener() (net.Listener, int, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, 0, err
	}
	if len(lns) == 0 {
		return nil, 0, nil
	}
	for _, ln := range lns[1:] {
		if ln != nil {
			ln.Close()
		}
	}
	if lns[0] == nil {
		return nil, len(lns), fmt.Errorf("socket activation: the first passed descriptor (fd 3) is not a listening stream socket")
	}
	return lns[0], len(lns), nil
}
