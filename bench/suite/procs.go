package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is a server process the suite started; its output goes to a log
// file in the work directory.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit error, set before done is closed
}

// start runs bin with args; stdout, unless captured by the caller through
// stdout, and stderr go to DIR/NAME.log.
func start(dir, name, bin string, args []string, stdout io.Writer) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = f
	cmd.Stdout = f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = childAttr() // never outlive the suite, where the OS allows
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

// pid returns the process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the process to end (SIGTERM), and kills it after 5s.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// tail returns the last lines of the log, for error messages.
func (c *child) tail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// startListening starts a program that prints "listening ADDR" on stdout
// once it accepts (tlsterm, tcprelay) and returns ADDR.
func startListening(dir, name, bin string, args []string) (*child, string, error) {
	pr, pw := io.Pipe()
	c, err := start(dir, name, bin, args, pw)
	if err != nil {
		return nil, "", err
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok && !sent {
				addrc <- a
				sent = true
			}
		}
	}()
	go func() { <-c.done; pw.Close() }()
	select {
	case a := <-addrc:
		return c, a, nil
	case <-c.done:
		return nil, "", fmt.Errorf("%s exited before listening: %v\n%s", name, c.err, c.tail())
	case <-time.After(10 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("%s did not listen within 10s\n%s", name, c.tail())
	}
}

// waitTCP waits until something accepts on each address, or c exits, or
// 10s pass.
func waitTCP(c *child, addrs ...string) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-c.done:
				return fmt.Errorf("%s exited: %v\n%s", c.name, c.err, c.tail())
			default:
			}
			if time.Now().After(deadline) {
				c.stop()
				return fmt.Errorf("%s does not accept on %s after 10s: %v\n%s", c.name, a, err, c.tail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// freePort returns a loopback address with a port that was free a moment
// ago, for programs that cannot report the port they picked.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runCmd runs a command to completion in dir and returns its combined
// output; the error carries the output.
func runCmd(ctx context.Context, dir string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// moduleRoot finds the directory of the portcullis go.mod from the working
// directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/portcullis-gw/portcullis\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("run the suite inside the portcullis repository (no go.mod of github.com/portcullis-gw/portcullis above the working directory)")
}
