package main

import (
	"strings"
	"testing"

	"github.com/assist-project/assist/filetransfer"
)

// TestFileProgress: on a terminal the bar is redrawn in place and ended
// before the next line; elsewhere a line per 10% step, never twice for
// one step; a transfer still open when the session ends is reported
// interrupted.
func TestFileProgress(t *testing.T) {
	id := filetransfer.ID{1}
	ev := func(st filetransfer.State, done uint64) filetransfer.Event {
		return filetransfer.Event{ID: id, Name: "big.bin", Size: 1000, Done: done, State: st}
	}
	var tty strings.Builder
	p := newFileProgress(&tty, true, "Grandma")
	p.show(ev(filetransfer.Offered, 0))
	p.show(ev(filetransfer.Transferring, 0))
	p.show(ev(filetransfer.Transferring, 500))
	p.show(ev(filetransfer.Completed, 1000))
	want := "file: offering big.bin (1.0 kB) to Grandma\n" +
		"\r  big.bin [------------------------]   0%  0 bytes of 1.0 kB\x1b[K" +
		"\r  big.bin [############------------]  50%  500 bytes of 1.0 kB\x1b[K" +
		"\nfile sent: big.bin reached Grandma\n"
	if tty.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", tty.String(), want)
	}

	var lines strings.Builder
	p = newFileProgress(&lines, false, "Grandma")
	for _, d := range []uint64{0, 50, 99, 100, 150, 1000} {
		p.show(ev(filetransfer.Transferring, d))
	}
	p.ended()
	want = "file: big.bin 0% (0 bytes of 1.0 kB)\n" +
		"file: big.bin 10% (100 bytes of 1.0 kB)\n" +
		"file: big.bin 100% (1.0 kB of 1.0 kB)\n" +
		"file interrupted: big.bin: the session ended (sending it again resumes it)\n"
	if lines.String() != want {
		t.Errorf("lines:\n%s\nwant\n%s", lines.String(), want)
	}
}
