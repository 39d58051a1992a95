package gateway

import (
	"context"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
)

// Watch polls files (those the credentials and the policy are loaded from)
// every interval and reloads when any changed since the state in force was
// loaded, until ctx is done; interval <= 0 disables it. A reload by other
// means (SIGHUP) counts: the files it loaded are not loaded again. A change
// that does not load keeps the old state (Reload logs why) and is not
// retried until the files change again.
func (s *Server) Watch(ctx context.Context, interval time.Duration, files []string) {
	if interval <= 0 {
		return
	}
	w := conn.NewFileWatch(files)
	s.reloadMu.Lock()
	s.watch = w
	s.reloadMu.Unlock()
	w.Run(ctx, interval, func() {
		s.log.Info().Str("event", "files_changed").Msg("a watched file changed; reloading")
		_ = s.Reload()
	})
}
