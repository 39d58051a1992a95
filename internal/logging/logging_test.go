package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
