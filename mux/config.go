package mux

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// Config returns the yamux configuration portcullis uses on both ends of a
// session. Each call returns a new value the caller may change further.
//
//   - AcceptBacklog 1024: pool warm-ups open about a thousand streams at
//     once; both ends must agree.
//   - keepalive every 15s, under common NAT and load-balancer idle timeouts;
//     a failed keepalive closes the session. [Client] and the gateway turn
//     yamux's keepalive off and run [KeepAlive] at this interval instead.
//   - ConnectionWriteTimeout 15s; StreamOpenTimeout 30s (firing closes the
//     whole session, so [Client.Open] bounds its own wait well before);
//     StreamCloseTimeout 60s for half-closed streams whose peer never closes.
//   - MaxStreamWindowSize 4 MiB: a receive window; it bounds one stream's
//     speed to about window/RTT and is the head-of-line cost other streams
//     pay behind a bulk stream. Windows start at yamux's 256 KiB and grow
//     to it only while their reader keeps up (see the next item).
//   - SessionReceiveBudget 8 MiB ([SessionReceiveBudget]): windows start
//     at 256 KiB and are granted more only within the budget, counting
//     every byte received and not read in the session; streams waiting
//     in the accept backlog hold at most the budget between them (a frame
//     past it resets its stream, not the session). The protocol gives
//     every stream 256 KiB up front, so a session holds at most 256 KiB
//     per accepted stream plus the budget: cap accepted streams with
//     yamux.Session.NumAcceptedStreams.
//   - MaxQueuedReplies 256 ([MaxQueuedReplies]): ping answers and stream
//     resets waiting to be written; a peer that makes more wait (pings
//     without reading the answers) is flooding, and its session is closed
//     with yamux.ErrFlood.
//   - Logger: yamux's messages go to log at debug level, with
//     component=yamux and, when yamux tagged one, its own level in
//     yamux_level ("[ERR]" is error, "[WARN]" warn). yamux's errors are
//     symptoms of what the tunnel and gateway log in their own terms (a
//     refused handshake, a peer gone), so they are not repeated at info
//     level. LogOutput is nil.
func Config(log zerolog.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = 1024
	c.EnableKeepAlive = true
	c.KeepAliveInterval = 15 * time.Second
	c.ConnectionWriteTimeout = 15 * time.Second
	c.MaxStreamWindowSize = 4 << 20
	c.StreamOpenTimeout = 30 * time.Second
	c.StreamCloseTimeout = 60 * time.Second
	c.SessionReceiveBudget = SessionReceiveBudget
	c.MaxQueuedReplies = MaxQueuedReplies
	c.LogOutput = nil
	c.Logger = yamuxLogger{log: log.With().Str("component", "yamux").Logger()}
	return c
}

// The receive budget of a session and the bound on its queued answers; see
// [Config].
const (
	SessionReceiveBudget = 8 << 20
	MaxQueuedReplies     = 256
)

// yamuxLogger adapts zerolog to yamux.Logger (Print, Printf, Println).
type yamuxLogger struct{ log zerolog.Logger }

func (l yamuxLogger) Print(v ...any)                 { l.emit(fmt.Sprint(v...)) }
func (l yamuxLogger) Println(v ...any)               { l.emit(fmt.Sprintln(v...)) }
func (l yamuxLogger) Printf(format string, v ...any) { l.emit(fmt.Sprintf(format, v...)) }

// emit maps yamux's "[ERR] yamux: ..." style prefixes to levels.
func (l yamuxLogger) emit(msg string) {
	msg = strings.TrimSpace(msg)
	level, tagged := zerolog.DebugLevel, false
	for _, p := range []struct {
		prefix string
		level  zerolog.Level
	}{
		{"[ERR]", zerolog.ErrorLevel},
		{"[ERROR]", zerolog.ErrorLevel},
		{"[WARN]", zerolog.WarnLevel},
		{"[INFO]", zerolog.InfoLevel},
		{"[DEBUG]", zerolog.DebugLevel},
	} {
		if rest, ok := strings.CutPrefix(msg, p.prefix); ok {
			level, tagged, msg = p.level, true, strings.TrimSpace(rest)
			break
		}
	}
	msg = strings.TrimPrefix(msg, "yamux: ")
	ev := l.log.Debug()
	if tagged && level != zerolog.DebugLevel {
		ev = ev.Str("yamux_level", level.String())
	}
	ev.Msg(msg)
}
