package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis-gw/portcullis/config"
)

// The README documents every setting of the gateway and the tunnel: each
// flag that --help lists must appear in it, so the two cannot drift apart.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	helps := map[string]func(*bytes.Buffer){
		"gateway run":    func(b *bytes.Buffer) { _, _ = config.ParseGateway([]string{"--help"}, none, b) },
		"tunnel forward": func(b *bytes.Buffer) { _, _ = config.ParseForward([]string{"--help"}, none, b) },
		"tunnel nc":      func(b *bytes.Buffer) { _, _ = config.ParseNC([]string{"--help"}, none, b) },
	}
	flagRE := regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z], )?(--[a-z][a-z0-9-]*)`)
	for cmd, help := range helps {
		var b bytes.Buffer
		help(&b)
		flags := flagRE.FindAllStringSubmatch(b.String(), -1)
		if len(flags) < 5 {
			t.Fatalf("%s --help lists %d flags; the pattern no longer matches its format:\n%s", cmd, len(flags), b.String())
		}
		for _, m := range flags {
			if m[1] == "--help" {
				continue
			}
			if !strings.Contains(string(readme), "`"+m[1]) {
				t.Errorf("README.md does not document %s %s", cmd, m[1])
			}
		}
	}
}
