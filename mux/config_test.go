package mux

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

func TestConfig(t *testing.T) {
	c := Config(zerolog.Nop())
	if err := yamux.VerifyConfig(c); err != nil {
		t.Fatalf("Config does not verify: %v", err)
	}
	if c.AcceptBacklog != 1024 || c.KeepAliveInterval != 15*time.Second || !c.EnableKeepAlive ||
		c.MaxStreamWindowSize != 4<<20 || c.LogOutput != nil || c.Logger == nil ||
		c.SessionReceiveBudget != 8<<20 || c.MaxQueuedReplies != 256 {
		t.Fatalf("Config = %+v", c)
	}
	if Config(zerolog.Nop()) == c {
		t.Fatal("Config returned a shared value")
	}
}

func TestYamuxLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := Config(zerolog.New(&buf).Level(zerolog.DebugLevel)).Logger
	l.Printf("[ERR] yamux: Failed to read header: %v", "boom")
	l.Println("[WARN] yamux: frame for missing stream")
	l.Print("[DEBUG] yamux: chatter")
	l.Print("no prefix")
	type line struct {
		Level, Message, Component string
		YamuxLevel                string `json:"yamux_level"`
	}
	var got []line
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		got = append(got, l)
	}
	want := []line{
		{"debug", "Failed to read header: boom", "yamux", "error"},
		{"debug", "frame for missing stream", "yamux", "warn"},
		{"debug", "chatter", "yamux", ""},
		{"debug", "no prefix", "yamux", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
