// Package logging builds the zerolog logger both commands use, from the
// --log-level and --log-format settings.
package logging

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/portcullis-gw/portcullis/internal/wbatch"
)

// New returns a logger writing to w. level is debug, info, warn or error;
// format is json (one object per line, for collectors) or console (for
// people). Timestamps are UTC with millisecond precision.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	return build(w, w, level, format)
}

// NewBatched is New with the lines written to w through a [wbatch.Writer]:
// lines logged while an earlier write to w is under way go out together in
// the next write, so a busy server spends one system call on many lines
// instead of one each. Nothing waits for more lines: a line logged when w
// is idle is written at once. flush waits until every line logged before
// it has been written, and stops the writer: call it before the process
// exits, after the last line.
func NewBatched(w io.Writer, level, format string) (log zerolog.Logger, flush func(), err error) {
	bw := wbatch.New(w, wbatch.Options{})
	log, err = build(bw, w, level, format)
	flush = func() { _ = bw.Close(nil) }
	if err != nil {
		flush()
		return log, func() {}, err
	}
	return log, flush, nil
}

// build returns a logger writing to w; the console format is coloured when
// term, where the lines end up, is a terminal.
func build(w, term io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" || lvl > zerolog.ErrorLevel || lvl < zerolog.DebugLevel {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !colorful(term)}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q: want json or console", format)
	}
	// zerolog's own Timestamp reads package-level settings (format, clock)
	// that other code in the process may change; this hook owns both.
	return zerolog.New(w).Level(lvl).Hook(timestamp{}), nil
}

// timeFormat is the time field's format: UTC with milliseconds, e.g.
// 2026-11-22T19:20:05.123Z.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// timestamp adds the time of each event, in timeFormat, under zerolog's
// time key (which the console writer reads).
type timestamp struct{}

func (timestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	var b [len(timeFormat)]byte
	e.Str(zerolog.TimestampFieldName, string(time.Now().UTC().AppendFormat(b[:0], timeFormat)))
}

// colorful reports whether w is a terminal and NO_COLOR is not set: colour
// codes only help a person at a terminal, and spoil files, pipes and CI logs.
func colorful(w io.Writer) bool {
	if _, set := os.LookupEnv("NO_COLOR"); set {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
