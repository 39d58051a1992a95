package settings

import (
	"bufio"
	"io"
	"strings"
)

// Doc is the text that --help prints around the list of flags.
type Doc struct {
	// Usage is the synopsis printed after "Usage: ", e.g. "tunnel nc
	// [flags] ROUTE". Empty means the command followed by "[flags]".
	Usage string
	// Intro says what the command does, in a few short paragraphs
	// separated by blank lines. Lines are printed as written.
	Intro string
	// Examples are printed after the flags, one command line each; a line
	// starting with "#" is a comment that introduces the next one.
	Examples []string
}

// Documenter is implemented by settings structs that describe their command
// for --help. Parse calls Doc on the value its dst argument points to.
type Documenter interface {
	Doc() Doc
}

// Layout of the flag list.
const (
	HelpWidth    = 100 // help text is wrapped at this column
	helpMaxLeft  = 32  // widest flag column; longer ones put the text on the next line
	helpIndent   = "  "
	helpColumnGp = 3
)

// writeHelp writes the help text of cmd: usage line, intro, one entry per
// setting with its default and environment variable, examples, and a note
// on how flags and variables relate.
func writeHelp(w io.Writer, cmd, prefix string, doc Doc, settings []*Setting) error {
	bw := bufio.NewWriter(w)
	usage := doc.Usage
	if usage == "" {
		usage = cmd + " [flags]"
	}
	bw.WriteString("Usage: " + usage + "\n")
	if intro := strings.TrimSpace(doc.Intro); intro != "" {
		bw.WriteString("\n" + intro + "\n")
	}

	bw.WriteString("\nFlags:\n")
	lefts := make([]string, len(settings)+1)
	width := 0
	for i, s := range settings {
		left := helpIndent
		if s.short != "" {
			left += "-" + s.short + ", "
		}
		left += "--" + s.name
		if s.meta != "" {
			left += " " + s.meta
		}
		lefts[i] = left
	}
	lefts[len(settings)] = helpIndent + "-h, --help"
	for _, l := range lefts {
		if len(l) <= helpMaxLeft && len(l) > width {
			width = len(l)
		}
	}
	col := width + helpColumnGp
	for i, s := range settings {
		words := strings.Fields(s.help)
		var tail []string
		switch {
		case s.hasDef && s.def != "":
			tail = append(tail, "(default "+s.def+")")
		case s.hasDef:
			tail = append(tail, `(default "")`)
		}
		if s.repeated {
			tail = append(tail, "(repeatable)")
		}
		if s.repeated {
			tail = append(tail, "[$"+s.env+", comma separated]")
		} else {
			tail = append(tail, "[$"+s.env+"]")
		}
		writeEntry(bw, lefts[i], col, append(words, tail...))
	}
	writeEntry(bw, lefts[len(settings)], col, strings.Fields("show this help"))

	if len(doc.Examples) > 0 {
		bw.WriteString("\nExamples:\n")
		for _, ex := range doc.Examples {
			bw.WriteString(helpIndent + ex + "\n")
		}
	}
	if len(settings) > 0 {
		bw.WriteString("\nEvery flag can also be set by the environment variable shown in brackets: " + prefix +
			" and the flag name\nin upper case with '-' as '_'. A flag on the command line wins over its variable; " +
			"an empty\nvariable counts as unset. Flags may be written with one or two dashes.\n")
	}
	return bw.Flush()
}

// writeEntry writes one flag entry: left column, then the words wrapped at
// HelpWidth and aligned at col. A word is never split; the default and the
// variable are single words.
func writeEntry(bw *bufio.Writer, left string, col int, words []string) {
	line := left
	if len(left)+helpColumnGp > col {
		bw.WriteString(line + "\n")
		line = ""
	}
	pad := strings.Repeat(" ", col)
	line += strings.Repeat(" ", col-len(line))
	n := 0 // words on the current line
	for _, w := range words {
		if n > 0 && len(line)+1+len(w) > HelpWidth {
			bw.WriteString(line + "\n")
			line, n = pad, 0
		}
		if n > 0 {
			line += " "
		}
		line += w
		n++
	}
	bw.WriteString(line + "\n")
}
