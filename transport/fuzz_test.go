package transport

import (
	"bytes"
	"errors"
	"testing"
)

// The parsers below read what an unauthenticated peer sends. They must not
// panic, must reject rather than guess, and what they accept must marshal
// back to the same bytes (one encoding per message, so nothing can hide in
// alternative encodings).

func FuzzParseHello(f *testing.F) {
	for _, h := range []hello{
		{Version: ProtocolVersion, InvitationID: testID, Name: testName},
		{Version: ProtocolVersion, InvitationID: "x"},
	} {
		b, _ := h.Marshal()
		f.Add(b)
	}
	f.Add([]byte{2})
	f.Add([]byte{1, 255})
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := parseHello(p)
		if err != nil {
			if !errors.Is(err, errMalformed) && !errors.Is(err, errUnsupportedVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		b, err := h.Marshal()
		if err != nil {
			t.Fatalf("parsed hello %+v does not marshal: %v", h, err)
		}
		if !bytes.Equal(b, p) {
			t.Fatalf("round trip %x -> %x", p, b)
		}
	})
}

func FuzzParseRefusal(f *testing.F) {
	f.Add(refusal{code: refuseBusy, message: "another expert is connected"}.marshal())
	f.Add([]byte{99})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := parseRefusal(p)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !bytes.Equal(r.marshal(), p) {
			t.Fatalf("round trip %x -> %x", p, r.marshal())
		}
		if e := refusalError("a", r); e.Kind == nil {
			t.Fatalf("refusal %+v maps to no error kind", r)
		}
	})
}

func FuzzParseVerdict(f *testing.F) {
	f.Add(verdict{verdictWrongPassword, 4}.marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := parseVerdict(p)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if !bytes.Equal(v.marshal(), p) {
			t.Fatalf("round trip %x -> %x", p, v.marshal())
		}
	})
}
