package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// staleProbeTimeout bounds the connect that tells a stale UNIX socket
// file (nobody listens) from a live one.
const staleProbeTimeout = time.Second

// listenUnix listens on a UNIX socket at path, readable and writable by
// our user only (mode 0600 whatever the umask: the mode is set on the
// socket before it is bound, where the system allows, and on the file
// before any connection is accepted). A socket file left by a run that
// crashed is replaced when nothing listens on it; a live socket, or a
// file that is no socket, is an error. So is a directory that others may
// write to without the sticky bit (they could replace the socket). The
// file is removed when the listener is closed.
func listenUnix(path string) (net.Listener, error) {
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	if m := dir.Mode(); m&0o002 != 0 && m&fs.ModeSticky == 0 {
		return nil, fmt.Errorf("directory %s is writable by every user and has no sticky bit: another user could replace the socket; use a private directory such as $XDG_RUNTIME_DIR", filepath.Dir(path))
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		// Not every system takes a socket file's mode from the
		// descriptor; the chmod below, before any accept, does.
		return c.Control(restrictSocket)
	}}
	ln, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		ln.Close()
		if err == nil {
			err = fmt.Errorf("socket %s has mode %v after chmod 0600", path, fi.Mode().Perm())
		}
		return nil, err
	}
	return ln, nil
}

// removeStale removes path if it is a socket on which nothing listens.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%v): remove it or choose another path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, staleProbeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("another process listens on %s: stop it or choose another path", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be checked for a listener: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	return nil
}
