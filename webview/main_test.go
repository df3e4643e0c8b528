package webview_test

import (
	"io"
	"log"
	"testing"

	"github.com/jezek/xgb"
	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind (bridges,
// WebSocket handlers, the browser's connection).
func TestMain(m *testing.M) {
	// xgb logs every connection to the standard logger.
	xgb.Logger = log.New(io.Discard, "", 0)
	goleak.VerifyTestMain(m)
}
