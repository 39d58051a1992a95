package conn

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

// WatchFiles polls files every interval and calls changed when any of them
// changed (size, modification time, appeared or vanished) since the last
// poll, until ctx is done. Empty names are skipped; interval <= 0 returns at
// once. Polling works the same on every file system and for files replaced
// by rename, as configuration managers and certificate agents do. A change
// whose reload fails is not retried until the files change again.
func WatchFiles(ctx context.Context, interval time.Duration, files []string, changed func()) {
	if interval <= 0 {
		return
	}
	var names []string
	for _, f := range files {
		if f != "" {
			names = append(names, f)
		}
	}
	last := make([]fileStamp, len(names))
	for i, f := range names {
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
		diff := false
		for i, f := range names {
			if st := stamp(f); st != last[i] {
				last[i] = st
				diff = true
			}
		}
		if diff {
			changed()
		}
	}
}

// Stamps are the sizes and modification times of a list of files at one
// moment, to tell later whether any of them changed.
type Stamps []fileStamp

// StampFiles takes the stamps of files (empty names are skipped).
func StampFiles(files []string) Stamps {
	var s Stamps
	for _, f := range files {
		if f != "" {
			s = append(s, stamp(f))
		}
	}
	return s
}

// Equal reports whether no file changed between a and b (stamps of the
// same list).
func (a Stamps) Equal(b Stamps) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
