package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
)

// TestFilesThroughRouters sends a file from assist join behind one NAT
// router to assist invite behind another (network namespaces, the
// novice's router mapping the port by UPnP), over the direct path, and
// logs the rate: a measurement, not an assertion. The size is 64 MiB, or
// ASSIST_FILEBENCH_MIB (1024 for the figure in the report).
func TestFilesThroughRouters(t *testing.T) {
	e2e(t)
	lab.NeedNetns(t)
	mib := 64
	if v, err := strconv.Atoi(os.Getenv("ASSIST_FILEBENCH_MIB")); err == nil && v > 0 {
		mib = v
	}
	x := lab.StartXvfb(t, 320, 240)
	n := lab.NewNet(t)
	n.StartMiniUPnPd(t, n.NAT1, lab.MiniUPnPdConfig{UPnP: true})
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for range mib {
		rand.Read(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	novDir := filepath.Join(dir, "novice")
	inNovice := []string{"ip", "netns", "exec", n.Novice}
	inExpert := []string{"ip", "netns", "exec", n.Expert}
	nov := startInvite(t, inNovice, x.Display, "--listen", ":0", "--allow", "view", "--no-page", "--files-dir", novDir)
	exp := startJoin(t, inExpert, nov.File, nov.PasswordFile, "--send", src, "--files-dir", filepath.Join(dir, "expert"))
	path := exp.WaitLine(t, `^path: (.+)$`, lineTimeout)[1]
	nov.WaitLine(t, `asks to exchange files with you`, lineTimeout)
	start := time.Now()
	nov.Send(t, "y")
	nov.WaitLine(t, `^file saved: `+regexp.QuoteMeta(filepath.Join(novDir, "big.bin"))+`$`, time.Duration(mib)*time.Second+lineTimeout)
	d := time.Since(start)
	t.Logf("%d MiB through two NAT routers (path %s) in %v: %.0f MiB/s (%.0f Mbit/s)", mib, path, d.Round(time.Millisecond),
		float64(mib)/d.Seconds(), float64(mib)*8.388608/d.Seconds())
}
