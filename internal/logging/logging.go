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
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
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
