package gateway

import (
	"context"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
)

// Watch polls files (those the credentials and the policy are loaded from)
// every interval and reloads when any changed, until ctx is done; interval
// <= 0 disables it. A change that does not load keeps the old state (Reload
// logs why).
func (s *Server) Watch(ctx context.Context, interval time.Duration, files []string) {
	conn.WatchFiles(ctx, interval, files, func() {
		s.log.Info().Str("event", "files_changed").Msg("a watched file changed; reloading")
		_ = s.Reload()
	})
}
