package gcfloor

import (
	"os"
	"runtime"
	"testing"
)

// TestSet: the ballast counts as live heap (the collector's goal rises by
// it) and is kept once; GOGC in the environment turns it off.
func TestSet(t *testing.T) {
	ballast = nil
	t.Cleanup(func() { ballast = nil })
	t.Setenv("GOGC", "100")
	if Set(1 << 20) {
		t.Fatal("Set added a ballast with GOGC set")
	}
	// t.Setenv restores the variable at the end; unset it for the rest.
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if !Set(8 << 20) {
		t.Fatal("Set did not add a ballast without GOGC")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew < 7<<20 {
		t.Errorf("live heap grew by %d bytes after an 8 MiB ballast, want about 8 MiB", grew)
	}
	if after.NextGC < before.NextGC+7<<20 {
		t.Errorf("heap goal %d → %d: did not rise by the ballast", before.NextGC, after.NextGC)
	}
	if Set(1<<20) || Size() != 8<<20 {
		t.Errorf("a second Set changed the ballast: size %d", Size())
	}
}
