package e2e_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// contribDir is the repository's contrib/, from the package directory.
const contribDir = "../contrib"

// helpFlag is a flag line of a --help text: "  --cert FILE   ...", "  -L, --local ...".
var helpFlag = regexp.MustCompile(`^  (?:-([A-Za-z]), )?--([a-z0-9-]+)`)

// helpFlags returns the flags that "BIN ARGS... --help" lists (short
// forms too), without --help and -h.
func helpFlags(t *testing.T, bin string, args ...string) []string {
	t.Helper()
	r := run(t, runTimeout, nil, nil, bin, append(args, "--help")...)
	text := string(r.stdout) + r.stderr
	_, flags, ok := strings.Cut(text, "\nFlags:\n")
	if !ok {
		t.Fatalf("%s %s --help has no Flags: section:\n%s", filepath.Base(bin), strings.Join(args, " "), text)
	}
	var out []string
	for _, line := range strings.Split(flags, "\n") {
		m := helpFlag.FindStringSubmatch(line)
		if m == nil || m[2] == "help" {
			continue
		}
		if m[1] != "" {
			out = append(out, "-"+m[1])
		}
		out = append(out, "--"+m[2])
	}
	if len(out) == 0 && !(len(args) == 2 && args[1] == "show") {
		t.Fatalf("no flags found in %s %s --help", filepath.Base(bin), strings.Join(args, " "))
	}
	return out
}

// completionCommands maps each flag list of the completion files (by its
// variable, NAME_flags) to the command whose --help it follows.
var completionCommands = map[string][]string{
	"gateway:run":          {"run"},
	"gateway:explain":      {"explain"},
	"gateway:pki_init":     {"pki", "init"},
	"gateway:pki_issue":    {"pki", "issue"},
	"gateway:pki_sign":     {"pki", "sign"},
	"gateway:pki_revoke":   {"pki", "revoke"},
	"gateway:pki_crl":      {"pki", "crl"},
	"gateway:pki_show":     {"pki", "show"},
	"gateway:enroll_serve": {"enroll", "serve"},
	"tunnel:forward":       {"forward"},
	"tunnel:nc":            {"nc"},
	"tunnel:bench":         {"bench"},
	"tunnel:login":         {"login"},
	"tunnel:status":        {"status"},
}

var (
	bashList = regexp.MustCompile(`(?m)^\s*local (\w+)_flags="([^"]*)"`)
	zshList  = regexp.MustCompile(`(?ms)^\s*(\w+)_flags=\(\n(.*?)^\s*\)`)
	zshFlag  = regexp.MustCompile(`--?[A-Za-z0-9][a-z0-9-]*`)
)

// completionLists reads the flag lists of one completion file.
func completionLists(t *testing.T, file string, zsh bool) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(contribDir, "completion", file))
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string][]string{}
	if !zsh {
		for _, m := range bashList.FindAllStringSubmatch(string(data), -1) {
			lists[m[1]] = strings.Fields(m[2])
		}
		return lists
	}
	for _, m := range zshList.FindAllStringSubmatch(string(data), -1) {
		var flags []string
		for _, line := range strings.Split(m[2], "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			// The spec's own flags: before the description in brackets.
			head, _, _ := strings.Cut(strings.TrimPrefix(line, "'("), "[")
			if i := strings.Index(line, ")'"); strings.HasPrefix(line, "'(") && i > 0 {
				head, _, _ = strings.Cut(line[i+2:], "[")
			}
			for _, f := range zshFlag.FindAllString(head, -1) {
				if !slices.Contains(flags, f) {
					flags = append(flags, f)
				}
			}
		}
		lists[m[1]] = flags
	}
	return lists
}

// TestCompletionsMatchHelp checks that the bash and zsh completion files
// offer exactly the flags each command's --help lists: a flag added to a
// settings struct and not to the completions fails here.
func TestCompletionsMatchHelp(t *testing.T) {
	t.Parallel()
	files := map[string]struct {
		file string
		zsh  bool
	}{
		"gateway bash": {"gateway.bash", false}, "tunnel bash": {"tunnel.bash", false},
		"gateway zsh": {"_gateway", true}, "tunnel zsh": {"_tunnel", true},
	}
	help := map[string][]string{}
	for key, args := range completionCommands {
		prog, _, _ := strings.Cut(key, ":")
		bin := gatewayBin
		if prog == "tunnel" {
			bin = tunnelBin
		}
		help[key] = helpFlags(t, bin, args...)
	}
	for what, f := range files {
		prog, _, _ := strings.Cut(what, " ")
		lists := completionLists(t, f.file, f.zsh)
		for key, want := range help {
			p, name, _ := strings.Cut(key, ":")
			if p != prog {
				continue
			}
			got, ok := lists[name]
			if !ok {
				t.Errorf("%s: no %s_flags list for %s %s", f.file, name, prog, strings.Join(completionCommands[key], " "))
				continue
			}
			got = slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s == "--help" || s == "-h" })
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("%s: %s_flags lacks %s, which %s %s --help lists", f.file, name, w, prog, strings.Join(completionCommands[key], " "))
				}
			}
			for _, g := range got {
				if !slices.Contains(want, g) {
					t.Errorf("%s: %s_flags offers %s, which %s %s --help does not list", f.file, name, g, prog, strings.Join(completionCommands[key], " "))
				}
			}
		}
	}
}

// bashComplete runs the completion function of file for the words of a
// command line (the last one is being completed) and returns COMPREPLY.
func bashComplete(t *testing.T, file, fn string, words ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	script := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); ` + fn + `; printf '%s\n' "${COMPREPLY[@]}"`
	r := run(t, runTimeout, nil, nil, bash, append([]string{"-c", script, "bash", filepath.Join(contribDir, "completion", file)}, words...)...)
	if r.code != 0 {
		t.Fatalf("bash completion %v: %v", words, r)
	}
	return strings.Fields(string(r.stdout))
}

// TestBashCompletion completes a few command lines with the bash files.
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file, fn string
		words    []string
		want     []string
	}{
		{"gateway.bash", "_gateway", []string{"gateway", ""}, []string{"run", "explain", "pki", "enroll", "help", "version"}},
		{"gateway.bash", "_gateway", []string{"gateway", "enroll", ""}, []string{"serve"}},
		{"gateway.bash", "_gateway", []string{"gateway", "enroll", "serve", "--users-"}, []string{"--users-keyring", "--users-map"}},
		{"gateway.bash", "_gateway", []string{"gateway", "pki", "i"}, []string{"init", "issue"}},
		{"gateway.bash", "_gateway", []string{"gateway", "run", "--max-pending-per"}, []string{"--max-pending-per-addr", "--max-pending-per-prefix"}},
		{"gateway.bash", "_gateway", []string{"gateway", "--listen", ":8443", "--no-l"}, []string{"--no-landlock"}},
		{"gateway.bash", "_gateway", []string{"gateway", "pki", "issue", "--key-type", "rsa-"}, []string{"rsa-2048", "rsa-3072", "rsa-4096"}},
		{"gateway.bash", "_gateway", []string{"gateway", "run", "--log-format", ""}, []string{"json", "console"}},
		{"tunnel.bash", "_tunnel", []string{"tunnel", "b"}, []string{"bench"}},
		{"tunnel.bash", "_tunnel", []string{"tunnel", "nc", "--key-p"}, []string{"--key-pass-file"}},
		{"tunnel.bash", "_tunnel", []string{"tunnel", "bench", "--mode", "t"}, []string{"throughput"}},
		{"tunnel.bash", "_tunnel", []string{"tunnel", "login", "--gp"}, []string{"--gpg-key", "--gpg"}},
		{"tunnel.bash", "_tunnel", []string{"tunnel", "whoami", "--"}, []string{"--dir", "--help"}},
	}
	for _, c := range cases {
		got := bashComplete(t, c.file, c.fn, c.words...)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %q: completed %q, want %q", c.file, c.words, got, c.want)
		}
	}
}

// TestZshCompletionSyntax parses the zsh files with zsh -n.
func TestZshCompletionSyntax(t *testing.T) {
	t.Parallel()
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh not installed (Debian package zsh)")
	}
	for _, f := range []string{"_gateway", "_tunnel"} {
		r := run(t, runTimeout, nil, nil, zsh, "-n", filepath.Join(contribDir, "completion", f))
		if r.code != 0 {
			t.Errorf("zsh -n %s: %v", f, r)
		}
	}
}

// TestSystemdUnitsVerify runs systemd-analyze verify on the units in
// contrib/systemd, with ExecStart pointed at the built gateway (verify
// checks that the program exists). Any warning about the units fails.
func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	for _, name := range []string{"portcullis-gateway.service", "portcullis-gateway.socket"} {
		data, err := os.ReadFile(filepath.Join(contribDir, "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "portcullis-gateway.service" {
			if !strings.Contains(string(data), "ExecStart=/usr/local/bin/gateway run\n") {
				t.Fatalf("%s: no ExecStart=/usr/local/bin/gateway run line (make install rewrites it)", name)
			}
			data = []byte(strings.ReplaceAll(string(data), "/usr/local/bin/gateway", gatewayBin))
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, runTimeout, nil, []string{"SYSTEMD_LOG_LEVEL=warning"}, analyze, "verify",
		filepath.Join(dir, "portcullis-gateway.service"), filepath.Join(dir, "portcullis-gateway.socket"))
	out := string(r.stdout) + r.stderr
	if r.code != 0 && strings.Contains(out, "Failed to initialize manager") {
		t.Skipf("systemd-analyze verify cannot run here: %s", strings.TrimSpace(out))
	}
	if r.code != 0 || strings.Contains(out, "portcullis-gateway") {
		t.Errorf("systemd-analyze verify: exit status %d:\n%s", r.code, out)
	}
}

// TestContainerfile checks the Containerfile's shape (a Go build stage
// with CGO_ENABLED=0, a distroless or scratch runtime, a non-root USER,
// EXPOSE 8443, the gateway as ENTRYPOINT) and runs its build command here:
// both binaries must come out static (no ELF interpreter). No container
// engine is needed.
func TestContainerfile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var froms []string
	var user, expose, entry, build string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			user = f[1]
		case "EXPOSE":
			expose = strings.Join(f[1:], " ")
		case "ENTRYPOINT":
			entry = strings.Join(f[1:], " ")
		case "RUN":
			if strings.Contains(line, "go build") {
				build = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "RUN"))
			}
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[0], "golang") ||
		!(strings.Contains(froms[1], "distroless/static") || froms[1] == "scratch") {
		t.Errorf("stages %q: want a golang build stage and a distroless/static or scratch runtime", froms)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: want a non-root user", user)
	}
	if expose != "8443" {
		t.Errorf("EXPOSE %q, want 8443", expose)
	}
	if !strings.Contains(entry, `"/usr/local/bin/gateway"`) {
		t.Errorf("ENTRYPOINT %s: want the gateway", entry)
	}
	if !strings.HasPrefix(build, "CGO_ENABLED=0 go build") {
		t.Fatalf("build command %q: want CGO_ENABLED=0 go build ...", build)
	}
	if testing.Short() {
		t.Skip("-short: the static build is not run")
	}
	out := t.TempDir()
	args := shellFields(strings.TrimPrefix(build, "CGO_ENABLED=0 go "))
	for i, a := range args {
		if a == "/out/" {
			args[i] = out + "/"
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	for _, name := range []string{"gateway", "tunnel"} {
		f, err := elf.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (it has an ELF interpreter)", name)
			}
		}
		f.Close()
	}
}

// shellFields splits a command line on blanks, as sh would for words
// without variables: double quotes group and are removed.
func shellFields(s string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// TestMakeInstall runs make install into a staging DESTDIR with
// PREFIX=/usr and checks where each file lands and that the service unit
// names the installed gateway.
func TestMakeInstall(t *testing.T) {
	t.Parallel()
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed")
	}
	dest, bin := t.TempDir(), t.TempDir()
	cmd := exec.Command(makeBin, "-s", "install", "DESTDIR="+dest, "PREFIX=/usr", "BIN="+bin)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	want := map[string]os.FileMode{
		"usr/bin/gateway": 0o755, "usr/bin/tunnel": 0o755,
		"usr/share/bash-completion/completions/gateway": 0o644, "usr/share/bash-completion/completions/tunnel": 0o644,
		"usr/share/zsh/site-functions/_gateway": 0o644, "usr/share/zsh/site-functions/_tunnel": 0o644,
		"usr/lib/systemd/system/portcullis-gateway.service": 0o644, "usr/lib/systemd/system/portcullis-gateway.socket": 0o644,
		"usr/share/doc/portcullis/LICENSE": 0o644, "usr/share/doc/portcullis/CHANGELOG.md": 0o644,
		"usr/share/doc/portcullis/gateway.env.example": 0o644,
	}
	for f, mode := range want {
		fi, err := os.Stat(filepath.Join(dest, f))
		if err != nil {
			t.Errorf("make install: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), mode)
		}
	}
	unit, err := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/portcullis-gateway.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/gateway run\n") {
		t.Errorf("installed unit does not run /usr/bin/gateway:\n%s", unit)
	}
	r := run(t, runTimeout, nil, nil, filepath.Join(dest, "usr/bin/gateway"), "--version")
	if r.code != 0 || !strings.HasPrefix(string(r.stdout), "gateway ") {
		t.Errorf("installed gateway --version: %v", r)
	}
}
