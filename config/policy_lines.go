package config

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// offset converts a 1-based line and column (in characters, as the YAML
// parser counts them) to a byte offset in the source.
func (pp *policyParser) offset(line, col int) (int, bool) {
	if pp.lines == nil {
		pp.lines = lineStarts(pp.src)
	}
	if line < 1 || line > len(pp.lines) || col < 1 {
		return 0, false
	}
	off := pp.lines[line-1]
	for range col - 1 {
		if off >= len(pp.src) || isBreakAt(pp.src, off) > 0 {
			return 0, false
		}
		_, size := utf8.DecodeRune(pp.src[off:])
		off += size
	}
	return off, true
}

// lineOf returns the 1-based line of byte offset off.
func (pp *policyParser) lineOf(off int) int {
	if pp.lines == nil {
		pp.lines = lineStarts(pp.src)
	}
	i, found := slices.BinarySearch(pp.lines, off)
	if found {
		return i + 1
	}
	return i
}

// lineStarts returns the byte offset of the start of each line, with the
// line breaks YAML knows: CR LF, CR, LF, NEL, LS and PS. A leading byte
// order mark is not part of the first line, as for the parser.
func lineStarts(src []byte) []int {
	starts := []int{0}
	if bytes.HasPrefix(src, []byte("\uFEFF")) {
		starts[0] = 3
	}
	for i := starts[0]; i < len(src); {
		if n := isBreakAt(src, i); n > 0 {
			i += n
			starts = append(starts, i)
			continue
		}
		i++
	}
	return starts
}

// isBreakAt returns the length of the line break at src[i:], or 0.
func isBreakAt(src []byte, i int) int {
	switch {
	case src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n':
		return 2
	case src[i] == '\r' || src[i] == '\n':
		return 1
	case bytes.HasPrefix(src[i:], []byte("\u0085")):
		return 2
	case bytes.HasPrefix(src[i:], []byte("\u2028")), bytes.HasPrefix(src[i:], []byte("\u2029")):
		return 3
	}
	return 0
}

// firstInvalidUTF8 returns the offset of the first byte that is not part of
// a valid UTF-8 sequence.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}
