package transport

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// recorder is a transcript of what a man in the middle saw.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// startMITM runs a machine in the middle in front of target: it terminates
// the expert's TLS with a certificate of its own (which the expert accepts,
// as it accepts any), opens its own TLS session to the novice, and relays the
// plaintext between them verbatim, recording it.
func startMITM(t *testing.T, target string) (string, *recorder) {
	t.Helper()
	cert, err := newCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	addr := tcpServer(t, func(c net.Conn) {
		defer c.Close()
		front := tls.Server(c, serverTLSConfig(cert))
		if err := front.Handshake(); err != nil {
			t.Errorf("mitm: front handshake: %v", err)
			return
		}
		raw, err := net.Dial("tcp", target)
		if err != nil {
			t.Errorf("mitm: dial novice: %v", err)
			return
		}
		defer raw.Close()
		back := tls.Client(raw, clientTLSConfig())
		if err := back.Handshake(); err != nil {
			t.Errorf("mitm: back handshake: %v", err)
			return
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			io.Copy(io.MultiWriter(back, rec), front)
			back.CloseWrite()
		})
		io.Copy(io.MultiWriter(front, rec), back)
		front.CloseWrite()
		c.Close()
		wg.Wait()
	})
	return addr, rec
}

func TestManInTheMiddleFails(t *testing.T) {
	l, sink := newTestListener(t, ListenerConfig{})
	mitm, rec := startMITM(t, l.Addr().String())

	_, err := Dial(t.Context(), []string{mitm}, dialConfig(testPassword))
	// The expert, with the right password, cannot verify the novice's
	// confirmation: the two TLS sessions have different exporters.
	wantHandshakeError(t, err, ErrWrongPassword)
	line := sink.waitOutcome(t, outcomeWrongPassword)
	t.Logf("novice logged: %s", line)
	if got := l.AttemptsLeft(); got != DefaultMaxFailures-1 {
		t.Errorf("novice AttemptsLeft = %d, want %d: the relayed attempt must count", got, DefaultMaxFailures-1)
	}
	if len(l.ready) != 0 {
		t.Error("the novice queued a connection through the man in the middle")
	}

	transcript := rec.Bytes()
	if len(transcript) == 0 {
		t.Fatal("the man in the middle relayed nothing")
	}
	if bytes.Contains(transcript, []byte(testPassword)) {
		t.Error("the password crossed the wire")
	}
	// Hello, two shares, two confirmations (or a failure notice) and a
	// verdict went through: the attack ran to the end and still failed.
	if len(transcript) < 2*32+32 {
		t.Errorf("transcript is only %d bytes; did the PAKE run?", len(transcript))
	}

	// With the relay out of the way, the right password still gets in.
	accepted := acceptAsync(t, l)
	mustDial(t, []string{l.Addr().String()}, dialConfig(testPassword))
	if r := <-accepted; r.err != nil {
		t.Fatal(r.err)
	}
}
