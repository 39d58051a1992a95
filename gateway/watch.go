package gateway

import (
	"context"
	"os"
	"time"
)

// fileStamp is what a poll compares: a file's size and modification time.
type fileStamp struct {
	size int64
	mod  time.Time
	ok   bool
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
}

// watchedFiles are the files a reload reads.
func (s *Server) watchedFiles() []string {
	var out []string
	for _, f := range []string{s.cfg.Cert, s.cfg.Key, s.cfg.CA, s.cfg.CRL, s.cfg.AllowFile, s.cfg.Policy} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Watch polls the files the state was loaded from every interval and
// reloads when any of them changed (size or modification time), until ctx
// is done. A change that does not load keeps the old state (Reload logs
// why) and is not retried until the files change again. Polling works the
// same on every file system and for files replaced by rename, as
// configuration managers and certificate agents do.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	files := s.watchedFiles()
	last := make([]fileStamp, len(files))
	for i, f := range files {
		last[i] = stamp(f)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed := false
		for i, f := range files {
			if st := stamp(f); st != last[i] {
				last[i] = st
				changed = true
			}
		}
		if changed {
			s.log.Info().Str("event", "files_changed").Msg("a watched file changed; reloading")
			_ = s.Reload()
		}
	}
}
