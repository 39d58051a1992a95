// Package sandbox restricts the running process to what it needs after
// start-up, with Landlock on Linux: reading a given set of files (and the
// directories they are in, since files are replaced by a rename), and, on
// kernels with Landlock ABI 4 or later, connecting TCP only to given ports
// and binding only given ports. It is best effort: on a kernel without
// Landlock (or outside Linux) nothing is restricted, and the Result says so.
//
// A restriction cannot be lifted, and it holds for every thread of the
// process and every process it starts.
package sandbox

import (
	"os"
	"path/filepath"
	"slices"
)

// Policy is what the process may still do once restricted.
type Policy struct {
	// Files may be read; so may everything under their directories (a
	// reload finds a file replaced by a rename there). A symbolic link is
	// followed and its target's directory added too. Files that do not
	// exist are skipped.
	Files []string
	// SystemFiles may be read, those files only (the resolver's
	// /etc/resolv.conf and /etc/hosts, say). Files that do not exist are
	// skipped.
	SystemFiles []string
	// ConnectTCP are the ports TCP connections may go to; with none, no
	// TCP connection may be made. Applied from Landlock ABI 4 on.
	ConnectTCP []uint16
	// BindTCP are the ports TCP sockets may bind to; with none, none.
	// Applied from Landlock ABI 4 on.
	BindTCP []uint16
}

// Result says what Restrict did.
type Result struct {
	// ABI is the kernel's Landlock ABI version; 0 means no Landlock (or
	// not Linux), and nothing was restricted.
	ABI int
	// Files and Network report which restrictions are in force.
	Files, Network bool
	// Dirs are the directories that stay readable, and SystemFiles the
	// files outside them.
	Dirs, SystemFiles []string
}

// existing returns the files of list that exist.
func existing(list []string) []string {
	var out []string
	for _, f := range list {
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// dirs returns the directories of files (following symbolic links, so
// both the link's and the target's directory), absolute, sorted, without
// duplicates, and only those that exist.
func dirs(files []string) []string {
	var out []string
	add := func(dir string) {
		if abs, err := filepath.Abs(dir); err == nil {
			if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
				out = append(out, abs)
			}
		}
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		add(filepath.Dir(f))
		if real, err := filepath.EvalSymlinks(f); err == nil {
			add(filepath.Dir(real))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
