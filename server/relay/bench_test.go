package relay

import (
	"testing"
	"time"
)

// BenchmarkRelayRoundTrip measures one datagram client -> relay -> peer ->
// relay -> client, per TURN transport: the latency TURN adds to a frame.
func BenchmarkRelayRoundTrip(b *testing.B) {
	r := startRelay(b, nil)
	peer := echoPeer(b, "echo:")
	for _, transport := range transports {
		b.Run(transport, func(b *testing.B) {
			user, pass := Credentials(testSecret, "bench-"+transport, time.Minute, time.Now())
			relayConn, err := r.client(b, transport, user, pass).Allocate()
			if err != nil {
				b.Fatal(err)
			}
			defer relayConn.Close()
			const msg = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			roundTrip(b, relayConn, peer, msg) // creates the permission
			b.SetBytes(2 * int64(len(msg)))
			for b.Loop() {
				roundTrip(b, relayConn, peer, msg)
			}
		})
	}
}
