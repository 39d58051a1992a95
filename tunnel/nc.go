package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/hashicorp/yamux"
)

// NC copies in to a stream to route and the stream to out: stdin/stdout
// through the gateway, as netcat would. When in ends, the stream is
// half-closed so the backend sees EOF; NC returns when the remote side is
// done sending (it does not wait for in after that). It returns the dial
// error (a *DialError or *mux.RefusedError) if the stream cannot open, and
// nil when ctx ends (an interrupted nc is not a failure).
func NC(ctx context.Context, d *Dialer, route string, in io.Reader, out io.Writer) error {
	s, err := d.Dial(ctx, route)
	if err != nil {
		return err
	}
	defer s.Close()
	go func() {
		// Owned by the copy below: it ends when in ends or s closes. A
		// blocked read of in (a terminal) cannot be cancelled; the process
		// exits after NC returns, so it is not waited for.
		_, _ = io.Copy(s, in)
		if cw, ok := s.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, s)
		done <- err
	}()
	select {
	case err := <-done:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if errors.Is(err, yamux.ErrConnectionReset) {
			err = fmt.Errorf("route %q: the gateway reset the stream (its backend failed or closed abruptly, or the gateway cut it): %w", route, err)
		}
		return err
	case <-ctx.Done(): // interrupted (SIGINT/SIGTERM): not an error of the settings
		s.Close()
		<-done
		return nil
	}
}
