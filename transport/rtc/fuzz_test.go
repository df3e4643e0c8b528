package rtc

import (
	"errors"
	"testing"
)

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{
		`{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}`,
		`{"type":"answer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":"candidate:1 1 udp 2130706431 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}`,
		`{"type":"end-of-candidates"}`,
		`{"type":"offer","sdp":"v=0","candidate":"x"}`,
		`{}`, `null`, `[]`, `{"type":"offer"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSignal(b)
		if err != nil {
			if !errors.Is(err, ErrSignalling) {
				t.Fatalf("error does not wrap ErrSignalling: %v", err)
			}
			return
		}
		// What parses must survive a round trip unchanged.
		out, err := s.marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed message: %v", err)
		}
		s2, err := parseSignal(out)
		if err != nil || s2.Type != s.Type || s2.SDP != s.SDP || s2.Candidate != s.Candidate {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", s, out, s2, err)
		}
	})
}

func FuzzParseHello(f *testing.F) {
	hb, _ := hello{Version: ProtocolVersion, InvitationID: testID, Name: testName}.Marshal()
	f.Add(hb)
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHello(b)
		if err != nil {
			return
		}
		out, err := h.Marshal()
		if err != nil || string(out) != string(b) {
			t.Fatalf("round trip of %q: %q, %v", b, out, err)
		}
	})
}
