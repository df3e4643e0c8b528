package novicepage

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind (WebSocket
// handlers and writers).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
