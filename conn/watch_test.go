package conn_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/conn"
)

func TestWatchFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn.WatchFiles(ctx, 10*time.Millisecond, []string{a, "", filepath.Join(dir, "b")}, func() { calls.Add(1) })
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatalf("%d calls without a change", calls.Load())
	}
	// Replace by rename, as agents do; a different size is a change even
	// within one modification-time tick.
	tmp := filepath.Join(dir, "a.tmp")
	if err := os.WriteFile(tmp, []byte("two!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, a); err != nil {
		t.Fatal(err)
	}
	waitCalls(t, &calls, 1)
	// A file that appears counts too.
	if err := os.WriteFile(filepath.Join(dir, "b"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitCalls(t, &calls, 2)
	// Once seen, the same files cause no more calls.
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls; want 2", n)
	}
}

func waitCalls(t *testing.T, calls *atomic.Int32, n int32) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); calls.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls after 5s; want %d", calls.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchFilesDisabled(t *testing.T) {
	done := make(chan struct{})
	go func() { defer close(done); conn.WatchFiles(context.Background(), 0, []string{"x"}, func() {}) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("WatchFiles with interval 0 did not return")
	}
}

// A change loaded by other means (Mark before a reload on SIGHUP) is not
// reported again by Run; a change after it is.
func TestFileWatchMark(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(f, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := conn.NewFileWatch([]string{f, ""})
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, 5*time.Millisecond, func() { calls.Add(1) }) }()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(f, []byte("two, longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Mark() // a reload by hand read the change
	time.Sleep(60 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d changes reported for one loaded by hand, want 0", n)
	}
	if err := os.WriteFile(f, []byte("three, longer still"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; calls.Load() == 0 && i < 200; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d changes reported after a new change, want 1", n)
	}
}
