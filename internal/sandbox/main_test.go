package sandbox_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child()) // a restricted child process of TestRestrict
	}
	goleak.VerifyTestMain(m)
}
