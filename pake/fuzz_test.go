package pake

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gtank/ristretto255"
)

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{}, uint16(32))
	f.Add([]byte{1, 0, 3, 'a', 'b', 'c'}, uint16(32))
	f.Add([]byte{1, 0, 3, 'a'}, uint16(32))
	f.Add([]byte{1, 0xff, 0xff}, uint16(0xffff))
	f.Add([]byte{1, 0, 40, 0}, uint16(32))
	f.Fuzz(func(t *testing.T, data []byte, maxLen uint16) {
		kind, payload, err := ReadMessage(bytes.NewReader(data), int(maxLen))
		if err != nil {
			if payload != nil {
				t.Fatal("payload returned with an error")
			}
			return
		}
		if len(payload) > int(maxLen) {
			t.Fatalf("payload of %d bytes over the bound %d", len(payload), maxLen)
		}
		// What was read is exactly a prefix of the input, re-encodable.
		var b bytes.Buffer
		if err := WriteMessage(&b, kind, payload); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, b.Bytes()) {
			t.Fatalf("re-encoded frame %x is not a prefix of the input %x", b.Bytes(), data)
		}
	})
}

// validShare reports, independently of Finish, whether a peer message is
// acceptable: 32 bytes, a canonical ristretto255 encoding, not the identity.
func validShare(b []byte) bool {
	if len(b) != MessageSize {
		return false
	}
	e := ristretto255.NewElement()
	if e.Decode(b) != nil {
		return false
	}
	return bytes.Equal(e.Encode(nil), b) && e.Equal(ristretto255.NewElement()) == 0
}

func FuzzFinish(f *testing.F) {
	peer := mustNew(f, cfg(Responder, "pw", "fuzz"))
	f.Add(peer.Message())
	for _, s := range badShares {
		f.Add(s)
	}
	f.Add(ristretto255.NewElement().Base().Encode(nil))
	f.Fuzz(func(t *testing.T, share []byte) {
		ex := mustNew(t, cfg(Initiator, "pw", "fuzz"))
		r, err := ex.Finish(share)
		if validShare(share) {
			if err != nil {
				t.Fatalf("Finish(%x) refused a valid share: %v", share, err)
			}
			// A random valid point is accepted but never confirms.
			if !bytes.Equal(share, peer.Message()) {
				if err := r.Verify(make([]byte, ConfirmationSize)); !errors.Is(err, ErrWrongPassword) {
					t.Fatalf("Verify(zero tag) = %v", err)
				}
			}
			return
		}
		if !errors.Is(err, ErrBadMessage) || r != nil {
			t.Fatalf("Finish(%x) = %v, %v; want ErrBadMessage", share, r, err)
		}
	})
}
