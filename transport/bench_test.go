package transport

import (
	"context"
	"io"
	"testing"
)

// BenchmarkHandshake measures one full connection over loopback: TCP, TLS
// 1.3 with a fresh Ed25519 certificate check, CPace, confirmations, verdict.
// It is the latency an expert adds to "join" on a fast network.
func BenchmarkHandshake(b *testing.B) {
	l := newListenerRaw(b, ListenerConfig{InvitationID: testID, Password: testPassword})
	addrs := []string{l.Addr().String()}
	cfg := dialConfig(testPassword)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := Dial(ctx, addrs, cfg)
		if err != nil {
			b.Fatal(err)
		}
		n, err := l.Accept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		io.Copy(io.Discard, n) // see the expert's close before freeing the slot
		n.Close()
	}
}

// BenchmarkThroughput measures bulk transfer over an authenticated Conn
// (the display stream's path).
func BenchmarkThroughput(b *testing.B) {
	l := newListenerRaw(b, ListenerConfig{InvitationID: testID, Password: testPassword})
	ctx := context.Background()
	c, err := Dial(ctx, []string{l.Addr().String()}, dialConfig(testPassword))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	n, err := l.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, c)
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := n.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	n.Close()
	<-done
}
