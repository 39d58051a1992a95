package logging

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine (a batch writer's
// flusher) outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
