package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/portcullis-gw/portcullis", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	i := FromBuildInfo(bi, true)
	want := Info{Module: "github.com/portcullis-gw/portcullis", Version: "v1.2.0",
		Commit: "0123456789abcdef0123456789abcdef01234567", Time: "2026-12-01T10:00:00Z", Dirty: true, Go: "go1.26.8"}
	if i != want {
		t.Fatalf("FromBuildInfo = %+v, want %+v", i, want)
	}
	if got, w := i.String(), "v1.2.0 (commit 0123456789ab+dirty, 2026-12-01T10:00:00Z; go1.26.8)"; got != w {
		t.Errorf("String = %q, want %q", got, w)
	}
	i.Dirty = false
	if got := i.Revision(); got != "0123456789ab" {
		t.Errorf("Revision of a clean tree = %q", got)
	}
}

func TestFromBuildInfoMissing(t *testing.T) {
	i := FromBuildInfo(nil, false)
	if i.Go != runtime.Version() || i.Commit != "" || i.Version != "" {
		t.Errorf("without build info: %+v", i)
	}
	if got, w := i.String(), "(devel) (commit unknown; "+runtime.Version()+")"; got != w {
		t.Errorf("String = %q, want %q", got, w)
	}
	bi := &debug.BuildInfo{Main: debug.Module{Path: "m", Version: "(devel)"}}
	if i := FromBuildInfo(bi, true); i.Go != runtime.Version() || i.Revision() != "unknown" {
		t.Errorf("build info without VCS or Go version: %+v", i)
	}
}

func TestGet(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.Go, "go") {
		t.Errorf("Get().Go = %q, want a Go version", i.Go)
	}
	if !strings.Contains(i.String(), i.Go) {
		t.Errorf("String %q does not carry the Go version", i.String())
	}
}
