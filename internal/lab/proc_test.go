package lab

import (
	"regexp"
	"testing"
	"time"
)

// waitMatch sees what is written after it starts waiting, across writes,
// and gives up at its timeout.
func TestLockedBufferWaitMatch(t *testing.T) {
	var l lockedBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Write([]byte("level=INFO outcome=refused"))
		l.Write([]byte(" attempts_left=5\nnext"))
	}()
	m, ok := l.waitMatch(regexp.MustCompile(`outcome=\S+ attempts_left=\d+`), 10*time.Second)
	<-done
	if !ok || m != "outcome=refused attempts_left=5" {
		t.Errorf("waitMatch = %q, %v; want the line written in two pieces", m, ok)
	}
	if m, ok := l.waitMatch(regexp.MustCompile(`never`), 10*time.Millisecond); ok {
		t.Errorf("waitMatch found %q in %q", m, l.String())
	}
}
