package main

import (
	"io"
	"os"
	"testing"
)

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		line, prompting string
		interactive     bool
		id              string
		accept, ok      bool
	}{
		{"accept abc", "", false, "abc", true, true},
		{"decline abc", "", false, "abc", false, true},
		{"  accept   abc ", "", false, "abc", true, true},
		{"accept", "", false, "", false, false},
		{"accept a b", "", false, "", false, false},
		{"yes", "", false, "", false, false},
		{"y", "", false, "", false, false}, // not on a terminal: ids only
		{"y", "req", true, "req", true, true},
		{"YES", "req", true, "req", true, true},
		{"", "req", true, "req", false, true}, // Enter: the default, no
		{"n", "req", true, "req", false, true},
		{"maybe", "req", true, "", false, false},
		{"accept other", "req", true, "other", true, true},
		{"y", "", true, "", false, false}, // nothing asked
	} {
		id, accept, ok := parseAnswer(tc.line, tc.prompting, tc.interactive)
		if id != tc.id || accept != tc.accept || ok != tc.ok {
			t.Errorf("parseAnswer(%q, %q, %v) = %q %v %v; want %q %v %v", tc.line, tc.prompting, tc.interactive, id, accept, ok, tc.id, tc.accept, tc.ok)
		}
	}
}

// TestLineReaderPipe: a script that writes "accept ID" and its next lines
// at once has them all read into the reader's buffer; pipe hands exactly
// the lines after the one taken to the novice's session, none lost and
// none twice.
func TestLineReaderPipe(t *testing.T) {
	src, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := io.WriteString(w, "accept abc\ny\nsay hi\n"); err != nil {
		t.Fatal(err)
	}
	lr := newLineReader(src)
	defer lr.close()
	l, ok := <-lr.ask()
	lr.got(ok)
	if l != "accept abc" || !ok {
		t.Fatalf("first line %q %v", l, ok)
	}
	p, err := lr.pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w.Close() // end of input: the copy ends and closes the pipe
	rest, err := io.ReadAll(p)
	if err != nil || string(rest) != "y\nsay hi\n" {
		t.Fatalf("the session got %q, %v; want the two lines after accept", rest, err)
	}
}

// TestLineReaderOnDemand: nothing is read before it is asked for, so a
// terminal's next keys go to whoever reads next.
func TestLineReaderOnDemand(t *testing.T) {
	src, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	defer w.Close()
	lr := newLineReader(src)
	defer func() {
		lr.close()
		<-lr.done // it was waiting to be asked: close ends it at once
	}()
	io.WriteString(w, "first\n")
	l, ok := <-lr.ask()
	lr.got(ok)
	if l != "first" {
		t.Fatalf("got %q", l)
	}
	// Not asked: the next line stays in the pipe for another reader.
	io.WriteString(w, "second\n")
	buf := make([]byte, 64)
	n, err := src.Read(buf)
	if err != nil || string(buf[:n]) != "second\n" {
		t.Fatalf("another reader got %q, %v", buf[:n], err)
	}
}
