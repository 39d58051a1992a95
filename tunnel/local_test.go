package tunnel_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/config"
	"github.com/portcullis-gw/portcullis/internal/testgw"
	"github.com/portcullis-gw/portcullis/internal/testpki"
	"github.com/portcullis-gw/portcullis/tunnel"
	"github.com/rs/zerolog"
)

// peerEnv makes the test binary a tiny client (see peerHelper): it
// connects to NETWORK ADDR, sends a line and prints what it read back.
const peerEnv = "PORTCULLIS_TEST_PEER"

// peerHelper runs the client when the test binary is started with
// peerEnv, as another user, and reports whether it did.
func peerHelper() bool {
	spec := os.Getenv(peerEnv)
	if spec == "" {
		return false
	}
	network, addr, _ := strings.Cut(spec, " ")
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		fmt.Printf("dial error: %v\n", err)
		os.Exit(0)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("ping\n"))
	b, err := io.ReadAll(c)
	fmt.Printf("read %d bytes %q, err %v\n", len(b), b, err)
	os.Exit(0)
	return true
}

// syncBuffer is a log sink that tests read while the forwarder writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// events returns the log's events named name.
func (b *syncBuffer) events(name string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == name {
			out = append(out, m)
		}
	}
	return out
}

// serveForward runs a Forwarder for locals until the test ends and
// returns it with its log.
func serveForward(t *testing.T, d *tunnel.Dialer, locals ...tunnel.Local) (*tunnel.Forwarder, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	f, err := tunnel.Listen(d, locals, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
	return f, logs
}

// echoOnce sends a line through c and expects it back.
func echoOnce(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("echo: got %q, %v; want hello", line, err)
	}
}

// TestUnixListener: a UNIX socket listener is created 0600, carries
// connections, replaces a stale socket file, refuses a live one or a
// file that is not a socket, and is removed at the end.
func TestUnixListener(t *testing.T) {
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	dir := t.TempDir()
	path := filepath.Join(dir, "echo.sock")

	// A stale socket: a listener closed without removing its file.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket file is gone before the test: %v", err)
	}

	logs := new(syncBuffer)
	f, err := tunnel.Listen(d, []tunnel.Local{{Bind: path, Route: "echo", SameUser: true}}, zerolog.New(logs))
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file: %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	// A second listener on the same path finds it alive.
	if _, err := tunnel.Listen(d, []tunnel.Local{{Bind: path, Route: "echo"}}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "another process listens on") {
		t.Errorf("Listen on a live socket: %v; want an error saying another process listens", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.Serve(ctx) }()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c) // our own uid passes the same-user check
	c.Close()
	cancel()
	<-served
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file after Serve: %v; want it removed", err)
	}
	if ev := logs.events("local_refused"); len(ev) != 0 {
		t.Errorf("our own connection was refused: %v", ev)
	}

	plain := filepath.Join(dir, "file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tunnel.Listen(d, []tunnel.Local{{Bind: plain, Route: "echo"}}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen on a regular file: %v; want an error saying it is not a socket", err)
	}
	if _, err := os.Stat(plain); err != nil {
		t.Errorf("the regular file was removed: %v", err)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := tunnel.Listen(d, []tunnel.Local{{Bind: filepath.Join(open, "s"), Route: "echo"}}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "no sticky bit") {
		t.Errorf("Listen in a world-writable directory: %v; want an error about the sticky bit", err)
	}
}

// TestSameUserRefusesOtherUser runs a client as user nobody against a
// loopback TCP listener and a UNIX socket listener with SameUser: it gets
// nothing back, and the refusal is logged with its uid; our own client is
// served.
func TestSameUserRefusesOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as another user (nobody)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run the other client as: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)

	// A directory nobody may enter, holding a copy of the test binary
	// and the socket.
	dir, err := os.MkdirTemp("", "portcullis-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "peer.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "echo.sock")
	f, logs := serveForward(t, d,
		tunnel.Local{Bind: "127.0.0.1:0", Route: "echo", SameUser: true},
		tunnel.Local{Bind: sock, Route: "echo", SameUser: true},
		tunnel.Local{Bind: "[::1]:0", Route: "echo", SameUser: true})
	// Let nobody past the file mode, so that the uid check is what refuses.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct{ network, addr string }{{"tcp", f.Addrs()[0].String()}, {"unix", sock}, {"tcp6", f.Addrs()[2].String()}} {
		t.Run(target.network, func(t *testing.T) {
			c, err := net.DialTimeout(target.network, target.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			echoOnce(t, c)
			c.Close()

			before := len(logs.events("local_refused"))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = []string{peerEnv + "=" + target.network + " " + target.addr}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("client as nobody: %v\n%s", err, out)
			}
			// The reset may come before the client's connect returns.
			if !strings.HasPrefix(string(out), "read 0 bytes") && !strings.Contains(string(out), "connection reset") {
				t.Errorf("client as nobody: %s; want nothing read back, or a reset", out)
			}
			var ev []map[string]any
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if ev = logs.events("local_refused"); len(ev) > before {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(ev) <= before {
				t.Fatalf("no local_refused event after a client as nobody (output %s)", out)
			}
			if got := ev[len(ev)-1]["peer_uid"]; got != float64(uid) {
				t.Errorf("local_refused names peer_uid %v; want %d (nobody): %v", got, uid, ev[len(ev)-1])
			}
		})
	}
}

// refusingForward serves a listener for a route the gateway does not
// have, refused in style.
func refusingForward(t *testing.T, style tunnel.Refusal) string {
	t.Helper()
	p := testpki.New(t)
	_, addr := startGateway(t, p)
	d := newDialer(t, p, addr)
	f, _ := serveForward(t, d, tunnel.Local{Bind: "127.0.0.1:0", Route: "nosuch", Refusal: style})
	return f.Addrs()[0].String()
}

const wantRefusal = "portcullis: unknown route: "

// TestRefusalPostgres speaks PostgreSQL's startup to a refused route:
// SSLRequest and GSSENCRequest get 'N', the startup packet a FATAL error
// whose message is the gateway's reason.
func TestRefusalPostgres(t *testing.T) {
	local := refusingForward(t, tunnel.RefusalPostgres)
	c, err := net.DialTimeout("tcp", local, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, code := range []uint32{80877104, 80877103} { // GSSENCRequest, SSLRequest
		var req [8]byte
		binary.BigEndian.PutUint32(req[:], 8)
		binary.BigEndian.PutUint32(req[4:], code)
		if _, err := c.Write(req[:]); err != nil {
			t.Fatal(err)
		}
		if b, err := br.ReadByte(); err != nil || b != 'N' {
			t.Fatalf("answer to request %d: %q, %v; want 'N'", code, b, err)
		}
	}
	params := "user\x00alice\x00database\x00app\x00\x00"
	startup := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	startup = binary.BigEndian.AppendUint32(startup, 3<<16)
	if _, err := c.Write(append(startup, params...)); err != nil {
		t.Fatal(err)
	}
	typ, err := br.ReadByte()
	if err != nil || typ != 'E' {
		t.Fatalf("answer to the startup packet: %q, %v; want an ErrorResponse 'E'", typ, err)
	}
	var n uint32
	if err := binary.Read(br, binary.BigEndian, &n); err != nil || n < 5 || n > 4096 {
		t.Fatalf("ErrorResponse length %d, %v", n, err)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	fields := map[byte]string{}
	for _, f := range bytes.Split(bytes.TrimRight(body, "\x00"), []byte{0}) {
		if len(f) > 0 {
			fields[f[0]] = string(f[1:])
		}
	}
	if fields['S'] != "FATAL" || fields['V'] != "FATAL" || fields['C'] != "08006" || !strings.HasPrefix(fields['M'], wantRefusal) || !strings.Contains(fields['M'], "nosuch") {
		t.Errorf("ErrorResponse fields %q; want S and V FATAL, C 08006, M %q... naming the route", fields, wantRefusal)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the ErrorResponse: %v; want the end of the connection", err)
	}
}

// TestRefusalRedis sends a RESP command to a refused route: the answer is
// an error reply with the gateway's reason.
func TestRefusalRedis(t *testing.T) {
	local := refusingForward(t, tunnel.RefusalRedis)
	for _, cmd := range []string{"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", "PING\r\n"} {
		c, err := net.DialTimeout("tcp", local, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(b), "-ERR "+wantRefusal) || !strings.HasSuffix(string(b), "\r\n") || strings.Count(string(b), "\n") != 1 {
			t.Errorf("answer to %q: %q, %v; want one line -ERR %s...", cmd, b, err, wantRefusal)
		}
	}
}

// TestRefusalHTTP: an HTTP client of a refused route gets a 502 whose
// body is the gateway's reason.
func TestRefusalHTTP(t *testing.T) {
	local := refusingForward(t, tunnel.RefusalHTTP)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post("http://"+local+"/v1/items", "text/plain", strings.NewReader("some body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(string(body), wantRefusal) || resp.Header.Get("X-Portcullis-Status") != "unknown-route" {
		t.Errorf("got %s %q (status header %q); want 502 with body %s...", resp.Status, body, resp.Header.Get("X-Portcullis-Status"), wantRefusal)
	}
}

// TestRefusalSilentClientIsReset: a client that sends nothing gets no
// answer, only the end of the connection, once the refusal's wait is over.
func TestRefusalSilentClientIsReset(t *testing.T) {
	local := refusingForward(t, tunnel.RefusalPostgres)
	c, err := net.DialTimeout("tcp", local, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) != 0 || err == nil || os.IsTimeout(err) {
		t.Errorf("silent client: read %q, %v; want nothing and a reset", b, err)
	}
}

// TestUnixBackend: a gateway route to a UNIX socket carries a stream; with
// a PROXY header, the header comes first and names the gateway's address
// as the destination.
func TestUnixBackend(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "backend.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	headers := make(chan []byte, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				var sig [16]byte
				if _, err := io.ReadFull(br, sig[:]); err != nil {
					return
				}
				if bytes.HasPrefix(sig[:], []byte("\r\n\r\n\x00\r\nQUIT\n")) {
					rest := make([]byte, binary.BigEndian.Uint16(sig[14:]))
					if _, err := io.ReadFull(br, rest); err != nil {
						return
					}
					headers <- append(sig[:], rest...)
				} else {
					headers <- nil
					_, _ = c.Write(sig[:])
				}
				_, _ = io.Copy(c, br)
			})
		}
	})
	cfg := testgw.Config(p, config.Route{Name: "u", Backend: "unix:" + path}, config.Route{Name: "up", Backend: "unix:" + path})
	cfg.RouteProxy = []string{"up"}
	_, addr := testgw.Serve(t, cfg, zerolog.Nop())
	d := newDialer(t, p, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, route := range []string{"u", "up"} {
		s, err := d.Dial(ctx, route)
		if err != nil {
			t.Fatalf("route %s to a UNIX socket: %v", route, err)
		}
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		msg := []byte("0123456789abcdef and more")
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("route %s: echoed %q, %v; want %q", route, got, err, msg)
		}
		s.Close()
		h := <-headers
		if route == "u" && h != nil {
			t.Errorf("route u sent a PROXY header")
		}
		if route == "up" {
			// v2, TCP over IPv4: source then destination address, then ports.
			if len(h) < 28 || h[13] != 0x11 {
				t.Fatalf("route up: PROXY header %x; want v2 TCP over IPv4", h)
			}
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(h[20:24])), binary.BigEndian.Uint16(h[26:28]))
			if dst.String() != addr {
				t.Errorf("PROXY header destination %s; want the gateway's address %s", dst, addr)
			}
		}
	}
}
