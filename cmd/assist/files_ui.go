package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/assist-project/assist/filetransfer"
)

// fileProgress prints file transfers for a person at a terminal: a bar
// redrawn in place on a terminal, a line every 10% otherwise (scripts,
// logs and tests read those).
type fileProgress struct {
	out  io.Writer
	tty  bool
	peer string // the other side's name
	// step is the last 10% step printed, per transfer; start is when
	// bytes began to flow, for the speed.
	step  map[filetransfer.ID]int
	start map[filetransfer.ID]time.Time
	// open are the transfers offered or under way, by name, for the
	// lines at the end of the session.
	open map[filetransfer.ID]filetransfer.Event
	bar  bool // a bar is drawn and the line not yet ended
	// words, if set, puts the other side's reasons in this side's words
	// (the novice's: novicepage.Reason).
	words func(string) string
}

func newFileProgress(out io.Writer, tty bool, peer string) *fileProgress {
	return &fileProgress{out: out, tty: tty, peer: peer,
		step: make(map[filetransfer.ID]int), start: make(map[filetransfer.ID]time.Time),
		open: make(map[filetransfer.ID]filetransfer.Event)}
}

// ended says what became of the transfers still open when the session
// ended: the receiver keeps what arrived, and the same file sent in a
// later session resumes from there.
func (p *fileProgress) ended() {
	for id, ev := range p.open {
		ev.State, ev.Reason = filetransfer.Interrupted, "the session ended"
		p.line("%s", fileOutcome(ev, p.peer))
		delete(p.open, id)
	}
}

// line prints a whole line, ending a bar first.
func (p *fileProgress) line(format string, args ...any) {
	if p.bar {
		fmt.Fprintln(p.out)
		p.bar = false
	}
	fmt.Fprintf(p.out, format+"\n", args...)
}

func (p *fileProgress) show(ev filetransfer.Event) {
	if p.words != nil {
		ev.Reason = p.words(ev.Reason)
	}
	name, size := ev.Name, filetransfer.Size(ev.Size)
	p.open[ev.ID] = ev
	switch ev.State {
	case filetransfer.Offered:
		if ev.Incoming {
			p.line("file: %s is sending you %s (%s)", p.peer, name, size)
		} else {
			p.line("file: offering %s (%s) to %s", name, size, p.peer)
		}
	case filetransfer.Transferring:
		if _, ok := p.start[ev.ID]; !ok {
			p.start[ev.ID] = time.Now()
			p.step[ev.ID] = -1
			if ev.Resumed > 0 {
				p.line("file: %s resumes at %s of %s", name, filetransfer.Size(ev.Resumed), size)
			}
		}
		pct := 100
		if ev.Size > 0 {
			pct = int(ev.Done * 100 / ev.Size)
		}
		if p.tty {
			p.drawBar(ev, pct)
			return
		}
		if s := pct / 10; s > p.step[ev.ID] {
			p.step[ev.ID] = s
			p.line("file: %s %d%% (%s of %s)", name, pct, filetransfer.Size(ev.Done), size)
		}
	default:
		delete(p.step, ev.ID)
		delete(p.start, ev.ID)
		delete(p.open, ev.ID)
		p.line("%s", fileOutcome(ev, p.peer))
	}
}

func (p *fileProgress) drawBar(ev filetransfer.Event, pct int) {
	const width = 24
	filled := width * pct / 100
	speed := ""
	if d := time.Since(p.start[ev.ID]).Seconds(); d > 0.5 {
		speed = "  " + filetransfer.Size(uint64(float64(ev.Done-ev.Resumed)/d)) + "/s"
	}
	fmt.Fprintf(p.out, "\r  %s [%s%s] %3d%%  %s of %s%s\x1b[K", ev.Name,
		strings.Repeat("#", filled), strings.Repeat("-", width-filled), pct,
		filetransfer.Size(ev.Done), filetransfer.Size(ev.Size), speed)
	p.bar = true
}

// fileOutcome says how a transfer ended, in one line.
func fileOutcome(ev filetransfer.Event, peer string) string {
	why := ""
	if ev.Reason != "" {
		why = ": " + ev.Reason
	}
	switch {
	case ev.State == filetransfer.Completed && ev.Incoming:
		return "file saved: " + ev.Path
	case ev.State == filetransfer.Completed:
		return fmt.Sprintf("file sent: %s reached %s", ev.Name, peer)
	case ev.State == filetransfer.Refused && ev.Incoming:
		return fmt.Sprintf("file refused: %s%s", ev.Name, why)
	case ev.State == filetransfer.Refused:
		return fmt.Sprintf("file not sent: %s refused %s%s", peer, ev.Name, why)
	case ev.State == filetransfer.Interrupted:
		return fmt.Sprintf("file interrupted: %s%s (sending it again resumes it)", ev.Name, why)
	}
	return fmt.Sprintf("file %s: %s%s", ev.State, ev.Name, why)
}
