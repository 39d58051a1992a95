package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestNew(t *testing.T) {
	var b bytes.Buffer
	log, err := New(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("hidden")
	log.Info().Str("event", "x").Msg("shown")
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", b.String(), err)
	}
	if m["event"] != "x" || m["level"] != "info" || m["time"] == nil {
		t.Fatalf("fields: %v", m)
	}
	// UTC, milliseconds: 2026-11-22T19:20:05.123Z
	if ts, _ := m["time"].(string); len(ts) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(ts, "Z") {
		t.Errorf("time %q: want UTC with milliseconds", m["time"])
	}
	b.Reset()
	log, err = New(&b, "debug", "console")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("now shown")
	if !strings.Contains(b.String(), "now shown") {
		t.Fatalf("console output %q", b.String())
	}
	for _, bad := range [][2]string{{"loud", "json"}, {"", "json"}, {"info", "xml"}, {"trace", "json"}} {
		if _, err := New(&b, bad[0], bad[1]); err == nil {
			t.Errorf("New(%q, %q) accepted", bad[0], bad[1])
		} else if !strings.Contains(err.Error(), "--log-") {
			t.Errorf("error %q does not name the flag", err)
		}
	}
}

// TestNewBatched: every line logged before flush is written whole, from
// any number of goroutines; a bad level is refused as by New.
func TestNewBatched(t *testing.T) {
	var b bytes.Buffer // written by the batch writer only, read after flush
	log, flush, err := NewBatched(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 250 {
				log.Info().Int("g", g).Int("i", i).Msg("line")
			}
		})
	}
	wg.Wait()
	flush()
	seen := map[[2]int]bool{}
	for line := range strings.Lines(b.String()) {
		var m struct{ G, I int }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[[2]int{m.G, m.I}] = true
	}
	if len(seen) != 1000 {
		t.Fatalf("%d distinct lines, want 1000", len(seen))
	}
	if _, _, err := NewBatched(&b, "loud", "json"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("NewBatched with a bad level: %v", err)
	}
}

// TestNewLeavesGlobals: building a logger changes none of zerolog's
// package-level settings, which other code in the process may rely on, and
// sub-loggers keep the UTC millisecond timestamp.
func TestNewLeavesGlobals(t *testing.T) {
	format, unit, key := zerolog.TimeFieldFormat, zerolog.DurationFieldUnit, zerolog.TimestampFieldName
	before := time.Now()
	var b bytes.Buffer
	log, err := New(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	if zerolog.TimeFieldFormat != format || zerolog.DurationFieldUnit != unit || zerolog.TimestampFieldName != key {
		t.Fatalf("zerolog globals changed: format %q unit %v key %q", zerolog.TimeFieldFormat, zerolog.DurationFieldUnit, zerolog.TimestampFieldName)
	}
	sub := log.With().Str("conn", "1").Logger()
	sub.Info().Msg("sub")
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", b.String(), err)
	}
	s, _ := m["time"].(string)
	got, err := time.Parse("2006-01-02T15:04:05.000Z07:00", s)
	if err != nil || !strings.HasSuffix(s, "Z") || got.Before(before.Truncate(time.Millisecond)) || time.Since(got) > time.Minute {
		t.Fatalf("time %q (%v): want now, UTC with milliseconds", s, err)
	}
}
