package main

import (
	"io"
	"log"
	"os"
	"testing"

	"github.com/jezek/xgb"

	"github.com/assist-project/assist/bench/linkem"
)

// TestMain quiets xgb before any test starts an X connection: xgb
// complains on stderr about the missing Xauthority (Xvfb needs none) and
// about connections dropping when Xvfb stops, and its Logger is read by
// every connection's reader, so setting it inside a test races with the
// connections an earlier test left winding down.
func TestMain(m *testing.M) {
	linkem.RunForwarder() // the links tests' emulated link (linkem.NewProcess)
	xgb.Logger = log.New(io.Discard, "", 0)
	os.Exit(m.Run())
}
