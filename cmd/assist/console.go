package main

import (
	"bufio"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// key is one thing the person at the terminal did.
type key struct {
	kind byte   // 'y', 'n', esc, 'q', 'c' (clipboard), 'f' (files), 'r' (request control), 'm' for a chat message, 's' to send a file
	text string // the message, for 'm'; the file's path, for 's'
}

const esc = 0x1b

// fileVerbs are the expert's answers to files offered to them and the
// cancelling of their own transfers ("accept [ID]", "refuse [ID]",
// "cancel"), as key kinds; the novice's side ignores them.
var fileVerbs = map[string]byte{"accept": 'A', "refuse": 'R', "cancel": 'K'}

// console reads the answers and commands of the person at the terminal:
// the novice's (assist invite) or the expert's (assist join). On a
// terminal it reads single keys (so Esc acts at once); otherwise, for
// scripts and tests, one command per line: y, n, esc, end (or leave), c
// (clipboard), f (files), control, "say TEXT" or "send PATH".
type console struct {
	keys    chan key
	restore func()
	out     io.Writer
}

func newConsole(in *os.File, out io.Writer) *console {
	c := &console{keys: make(chan key, 16), restore: func() {}, out: out}
	fd := int(in.Fd())
	if term.IsTerminal(fd) {
		if old, err := term.MakeRaw(fd); err == nil {
			rawTerminal.Store(true)
			c.restore = func() { rawTerminal.Store(false); term.Restore(fd, old) }
			c.out = crlfWriter{out}
			go c.readKeys(in)
			return c
		}
	}
	go c.readLines(in)
	return c
}

// The readers below block on stdin for the life of the process: a read of
// a terminal can't be cancelled, and the process exits when it is done.

func (c *console) readKeys(in io.Reader) {
	b := make([]byte, 1)
	var msg []byte
	typing := false
	var kind byte = 'm' // what the line being typed is
	for {
		if _, err := in.Read(b); err != nil {
			c.keys <- key{kind: 'q'}
			return
		}
		ch := b[0]
		if typing {
			switch ch {
			case '\r', '\n':
				typing = false
				c.keys <- key{kind: kind, text: string(msg)}
				msg = msg[:0]
			case esc:
				typing = false
				msg = msg[:0]
				c.keys <- key{kind: esc}
			case 0x7f, 0x08:
				if len(msg) > 0 {
					msg = msg[:len(msg)-1]
				}
			default:
				msg = append(msg, ch)
			}
			continue
		}
		switch ch {
		case 'y', 'Y':
			c.keys <- key{kind: 'y'}
		case 'n', 'N', '\r', '\n':
			c.keys <- key{kind: 'n'}
		case esc:
			c.keys <- key{kind: esc}
		case 'q', 'Q', 0x03, 0x04:
			c.keys <- key{kind: 'q'}
		case 'm', 'M':
			typing, kind = true, 'm'
		case 's', 'S':
			typing, kind = true, 's'
			c.keys <- key{kind: 'S'} // prompt for the path
		case 'f', 'F':
			c.keys <- key{kind: 'f'}
		case 'c', 'C':
			c.keys <- key{kind: 'c'}
		case 'r', 'R':
			c.keys <- key{kind: 'r'}
		}
	}
}

func (c *console) readLines(in io.Reader) {
	s := bufio.NewScanner(in)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch strings.ToLower(line) {
		case "y", "yes":
			c.keys <- key{kind: 'y'}
		case "n", "no", "":
			c.keys <- key{kind: 'n'}
		case "esc", "\x1b":
			c.keys <- key{kind: esc}
		case "end", "q", "quit", "leave":
			c.keys <- key{kind: 'q'}
		case "c", "clipboard":
			c.keys <- key{kind: 'c'}
		case "r", "control":
			c.keys <- key{kind: 'r'}
		case "f", "files":
			c.keys <- key{kind: 'f'}
		default:
			if verb, arg, _ := strings.Cut(line, " "); fileVerbs[strings.ToLower(verb)] != 0 {
				c.keys <- key{kind: fileVerbs[strings.ToLower(verb)], text: strings.TrimSpace(arg)}
				continue
			}
			if path, ok := strings.CutPrefix(line, "send "); ok {
				c.keys <- key{kind: 's', text: strings.TrimSpace(path)}
				continue
			}
			if text, ok := strings.CutPrefix(line, "say "); ok {
				c.keys <- key{kind: 'm', text: text}
			}
		}
	}
	// Stdin closed: a script is done talking, the session goes on.
}

// crlfWriter turns \n into \r\n for a terminal in raw mode.
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write([]byte(strings.ReplaceAll(string(p), "\n", "\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
