// Package version reports what a portcullis binary was built from: the
// module version, the VCS commit (and whether the tree had uncommitted
// changes) and the Go toolchain, as recorded by the Go linker and read with
// runtime/debug.ReadBuildInfo. It keeps no state; every call reads the
// build information afresh.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info describes a build. Fields the build did not record are empty.
type Info struct {
	// Module is the main module's path.
	Module string
	// Version is the main module's version: a tag such as v1.2.0 for a
	// "go install ...@v1.2.0" build, "(devel)" for a build in a checkout.
	Version string
	// Commit is the VCS revision the binary was built from, and Time its
	// commit time (RFC 3339); both are empty when the build was not made
	// in a VCS checkout (or with -buildvcs=false).
	Commit, Time string
	// Dirty reports uncommitted changes in the checkout at build time.
	Dirty bool
	// Go is the toolchain version, such as go1.26.8.
	Go string
}

// Get returns the running binary's build information.
func Get() Info {
	return FromBuildInfo(debug.ReadBuildInfo())
}

// FromBuildInfo extracts an Info from what debug.ReadBuildInfo returns.
// With ok false (a binary built without module support) only Go is set,
// from runtime.Version.
func FromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	if !ok || bi == nil {
		return Info{Go: runtime.Version()}
	}
	i := Info{Module: bi.Main.Path, Version: bi.Main.Version, Go: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Dirty = s.Value == "true"
		}
	}
	if i.Go == "" {
		i.Go = runtime.Version()
	}
	return i
}

// Revision returns the commit, shortened to 12 hex digits, with "+dirty"
// when the tree had uncommitted changes; "unknown" when no commit was
// recorded.
func (i Info) Revision() string {
	if i.Commit == "" {
		return "unknown"
	}
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Dirty {
		c += "+dirty"
	}
	return c
}

// String formats the build on one line, as --version prints it after the
// program name:
//
//	v1.2.0 (commit 0123456789ab+dirty, 2026-12-01T10:00:00Z; go1.26.8)
//
// An empty Version is shown as "(devel)".
func (i Info) String() string {
	v := i.Version
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	b.WriteString(v)
	b.WriteString(" (commit ")
	b.WriteString(i.Revision())
	if i.Time != "" {
		b.WriteString(", " + i.Time)
	}
	b.WriteString("; " + i.Go + ")")
	return b.String()
}
