package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/bench/internal/hostile"
	"github.com/portcullis-gw/portcullis/bench/proc"
)

func TestParseHostileReport(t *testing.T) {
	r, err := parseHostileReport("flooding\n{\"mode\":\"pings\",\"sessions\":3,\"closed_by_gateway\":2}\n")
	if err != nil || r.Mode != "pings" || r.Sessions != 3 || r.ClosedByGateway != 2 {
		t.Errorf("report %+v, %v", r, err)
	}
	for _, bad := range []string{"", "flooding\n", "{not json\n"} {
		if _, err := parseHostileReport(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	for _, args := range [][]string{{"-hostile-modes", "pings,nosuch"}, {"-hostile-rounds", "0"}, {"-hostile-duration", "10ms"}} {
		if _, err := parseOptions(args, io.Discard); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: error %v, want one naming %s", args, err, args[0])
		}
	}
}

func TestReadLogStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.log")
	body := `{"event":"accept"}` + "\n" + `{"event":"stream_refused","suppressed":41}` + "\n" +
		`{"event":"session_flood"}` + "\n" + `{"event":"stream_refused","suppressed":9}` + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := readLogStats(path, int64(len(`{"event":"accept"}`)+1))
	if err != nil || st.lines != 3 || st.suppressed != 50 || st.floods != 1 || st.bytes != int64(len(body)-len(`{"event":"accept"}`)-1) {
		t.Errorf("stats %+v, %v", st, err)
	}
}

// The hostile binary against the gateway binary, briefly: unread pings
// close each flooding session (logged once each), frames for streams that
// do not exist and refusals by the thousand leave a bounded log with a
// suppressed count, and the gateway's peak memory stays within tens of
// MiB. Timings are not asserted.
func TestHostileFloodsAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway and the hostile client and floods: not in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads the gateway's /proc/PID/status and floods from 127.0.0.2: Linux only")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := runCmd(ctx, root, "go", "build", "-o", bin+"/", "./cmd/gateway", "./bench/cmd/hostile"); err != nil {
		t.Fatal(err)
	}
	f, err := makePKI(filepath.Join(bin, "gateway"), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startBackends()
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := start(dir, "gateway", filepath.Join(bin, "gateway"), floodGatewayArgs(addr, admin, f, b, "info"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.stop()
	if err := waitTCP(gw, addr, admin); err != nil {
		t.Fatal(err)
	}
	status := func(name string) int64 {
		t.Helper()
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", gw.pid()))
		if err != nil {
			t.Fatal(err)
		}
		n, err := proc.ParseStatusKB(st, name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	hwm0 := status("VmHWM")
	flood := func(mode string, extra ...string) (*hostile.Report, logStats) {
		t.Helper()
		fi, err := os.Stat(gw.log)
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-gateway", addr, "-cert", f.clientCert, "-key", f.clientKey, "-ca", f.ca,
			"-source", floodSource, "-mode", mode}, extra...)
		out, err := runCmd(ctx, dir, filepath.Join(bin, "hostile"), args...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseHostileReport(out)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the gateway's last lines
		ls, err := readLogStats(gw.log, fi.Size())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v; log: %+v; VmHWM %d MiB", mode, *r, ls, status("VmHWM")>>20)
		return r, ls
	}

	r, ls := flood(hostile.ModePings, "-max-sessions", "3", "-duration", "20s")
	if r.Sessions != 3 || r.ClosedByGateway != 3 {
		t.Errorf("pings: %d of %d sessions closed by the gateway, want all", r.ClosedByGateway, r.Sessions)
	}
	if r.Refused == 0 {
		t.Errorf("pings: no connection reset between the 3 flooding sessions: the address was not held (--abuse-hold)")
	}
	if ls.floods < 1 || ls.floods > 3 {
		t.Errorf("pings: %d session_flood events for 3 flooding sessions", ls.floods)
	}

	r, ls = flood(hostile.ModeUnknown, "-max-sessions", "2", "-duration", "20s")
	if r.Frames < 40000 {
		t.Errorf("unknown: %d frames sent, want 2 sessions of 20,000", r.Frames)
	}
	if ls.lines > 100 {
		t.Errorf("unknown: %d log lines for %d frames on streams that do not exist: not bounded", ls.lines, r.Frames)
	}

	// Long enough (2.5 s) for the session's log budget to refill, so that
	// a later line says how many were left out.
	r, ls = flood(hostile.ModeLogs, "-max-sessions", "1", "-duration", "2500ms")
	// The session is paced past 400 refusals, at 200 a second.
	if paced := 400 + 200*r.Elapsed*1.2 + 100; r.Refusals < 500 || float64(r.Refusals) > paced {
		t.Errorf("logs: %d refusals of %d streams in %.1f s; want 500 to %.0f (the burst, then paced)", r.Refusals, r.Streams, r.Elapsed, paced)
	}
	if ls.lines > 500 || ls.suppressed == 0 {
		t.Errorf("logs: %d log lines, %d suppressed, for %d refusals: want a bounded log with a suppressed count", ls.lines, ls.suppressed, r.Refusals)
	}

	r, _ = flood(hostile.ModeRefused, "-max-sessions", "2", "-count", "200", "-duration", "20s")
	if r.Resets < r.Streams*9/10 {
		t.Errorf("refused: %d of %d refused streams reset", r.Resets, r.Streams)
	}
	if grew := status("VmHWM") - hwm0; grew > 64<<20 {
		t.Errorf("the gateway's peak RSS grew by %d MiB under the floods (%d MiB of refused data pushed): not bounded",
			grew>>20, r.DataBytes>>20)
	}
}
