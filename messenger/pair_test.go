package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// TestPairRecvBeforeFailure: a message the peer relayed before the server
// said the pairing failed (or the connection closed) is still returned
// first, every time: the peer's key confirmation is what lets this side
// say "the code does not match" instead of "the other side left".
func TestPairRecvBeforeFailure(t *testing.T) {
	relay := func(s string) Message {
		data, _ := json.Marshal(B64([]byte(s)))
		return Message{Type: TypePairRelay, Pair: "p", Data: data}
	}
	for _, end := range []string{"pair-failed", "connection closed"} {
		t.Run(end, func(t *testing.T) {
			// Go picks among ready select cases at random: enough rounds
			// that an unordered Recv fails this test for certain.
			for range 64 {
				c := &Client{done: make(chan struct{}), pairs: map[string]*Pair{}}
				p := c.addPair("p", "device")
				p.deliver(relay("confirm"))
				if end == "pair-failed" {
					p.deliver(Message{Type: TypePairFailed, Pair: "p", Reason: "the other side left"})
				} else {
					close(c.done)
				}
				b, err := p.Recv(context.Background())
				if err != nil || string(b) != "confirm" {
					t.Fatalf("Recv = %q, %v; want the relayed confirm first", b, err)
				}
				if end == "pair-failed" {
					_, err = p.Recv(context.Background())
					var pf *PairFailedError
					if !errors.As(err, &pf) || pf.Reason != "the other side left" {
						t.Fatalf("second Recv: %v, want the failure", err)
					}
				}
			}
		})
	}
}
