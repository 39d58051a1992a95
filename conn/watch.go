package conn

import (
	"context"
	"os"
	"slices"
	"sync"
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
	NewFileWatch(files).Run(ctx, interval, changed)
}

// FileWatch polls a list of files for changes against what they were when
// they were last loaded: at NewFileWatch, at each change it reported, and
// at each Mark (a reload by other means, such as SIGHUP, calls it before it
// reads the files, so that the watcher does not load the same change
// again). Safe for concurrent use.
type FileWatch struct {
	files []string
	mu    sync.Mutex
	last  stamps
}

// NewFileWatch takes the files' stamps now; empty names are skipped.
func NewFileWatch(files []string) *FileWatch {
	w := &FileWatch{files: slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == "" })}
	w.Mark()
	return w
}

// Mark takes the files' stamps as they are now: a load that starts now
// sees them.
func (w *FileWatch) Mark() {
	st := stampFiles(w.files)
	w.mu.Lock()
	w.last = st
	w.mu.Unlock()
}

// Run polls the files every interval until ctx is done and calls changed
// (after a Mark) when any differs from the last Mark; interval <= 0
// returns at once.
func (w *FileWatch) Run(ctx context.Context, interval time.Duration, changed func()) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := stampFiles(w.files)
		w.mu.Lock()
		diff := !slices.Equal(cur, w.last)
		if diff {
			w.last = cur
		}
		w.mu.Unlock()
		if diff {
			changed()
		}
	}
}

// stamps are the sizes and modification times of a list of files at one
// moment, to tell later whether any of them changed.
type stamps []fileStamp

// stampFiles takes the stamps of files (empty names are skipped).
func stampFiles(files []string) stamps {
	var s stamps
	for _, f := range files {
		if f != "" {
			s = append(s, stamp(f))
		}
	}
	return s
}
