package e2e_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Paths of the programs under test, built once by TestMain.
var (
	gatewayBin string
	tunnelBin  string
	// workDir is a temporary directory for the whole run (the binaries and
	// the shared PKI); removed when the tests end.
	workDir string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse() // for testing.Verbose and testing.Short before m.Run
	dir, err := os.MkdirTemp("", "portcullis-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	workDir = dir
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	gatewayBin = filepath.Join(dir, "gateway")
	tunnelBin = filepath.Join(dir, "tunnel")
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: goroutines leaked:", err)
			code = 1
		}
	}
	return code
}

// build compiles ./cmd/gateway and ./cmd/tunnel of this module into dir.
func build(dir string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if os.Getenv("E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/gateway", "./cmd/tunnel")
	cmd := exec.Command("go", args...)
	cmd.Dir = ".." // the module root: tests run in the package directory
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built gateway and tunnel in %v\n", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
