package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/assist-project/assist/transport/internal/handshake"
)

func TestHelloRoundTrip(t *testing.T) {
	for _, h := range []hello{
		{Version: ProtocolVersion, InvitationID: testID, Name: testName},
		{Version: ProtocolVersion, InvitationID: "x", Name: ""},
		{Version: ProtocolVersion, InvitationID: strings.Repeat("~", MaxInvitationID), Name: strings.Repeat("é", MaxName/2)},
	} {
		b, err := h.Marshal()
		if err != nil {
			t.Fatalf("marshal %+v: %v", h, err)
		}
		got, err := parseHello(b)
		if err != nil || got != h {
			t.Errorf("parseHello(marshal(%+v)) = %+v, %v", h, got, err)
		}
	}
}

func TestParseHelloErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"empty", nil, errMalformed},
		{"future version", []byte{2, 1, 'a', 0}, errUnsupportedVersion},
		{"version zero", []byte{0}, errUnsupportedVersion},
		{"no id length", []byte{1}, errMalformed},
		{"truncated id", []byte{1, 5, 'a'}, errMalformed},
		{"empty id", []byte{1, 0, 0}, errMalformed},
		{"no name length", []byte{1, 1, 'a'}, errMalformed},
		{"truncated name", []byte{1, 1, 'a', 3, 'b'}, errMalformed},
		{"trailing", []byte{1, 1, 'a', 0, 0}, errMalformed},
		{"space in id", []byte{1, 2, 'a', ' ', 0}, errMalformed},
		{"control in name", []byte{1, 1, 'a', 2, 'b', '\n'}, errMalformed},
		{"escape in name", []byte{1, 1, 'a', 1, 0x1b}, errMalformed},
		{"invalid utf-8 name", []byte{1, 1, 'a', 2, 0xc3, 0x28}, errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseHello(tc.payload); !errors.Is(err, tc.want) {
				t.Errorf("parseHello(%x) = %v, want %v", tc.payload, err, tc.want)
			}
		})
	}
}

func TestHelloMarshalRejects(t *testing.T) {
	for _, h := range []hello{
		{Version: 1, InvitationID: "", Name: "a"},
		{Version: 1, InvitationID: "a b", Name: "a"},
		{Version: 1, InvitationID: "a", Name: strings.Repeat("x", MaxName+1)},
		{Version: 1, InvitationID: "a", Name: "bell\a"},
	} {
		if _, err := h.Marshal(); err == nil {
			t.Errorf("marshal(%+v) succeeded", h)
		}
	}
}

func TestRefusal(t *testing.T) {
	r := refusal{code: refuseBusy, message: "another expert is connected"}
	got, err := parseRefusal(r.marshal())
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// A long message is cut at a rune boundary and still parses.
	long := refusal{code: refuseExpired, message: strings.Repeat("é", handshake.MaxRefusalMessage)}
	b := long.marshal()
	if len(b) > maxRefusal {
		t.Fatalf("marshalled refusal is %d bytes, max %d", len(b), maxRefusal)
	}
	if _, err := parseRefusal(b); err != nil {
		t.Fatalf("truncated refusal does not parse: %v", err)
	}
	// Unknown codes survive parsing and map to ErrVersion.
	if r, err := parseRefusal([]byte{99, 'h', 'i'}); err != nil || !errors.Is(refusalError("a", r), ErrVersion) {
		t.Errorf("unknown code: %+v, %v", r, err)
	}
	for _, bad := range [][]byte{nil, {1, '\n'}, {1, 0xff}, append([]byte{1}, bytes.Repeat([]byte{'a'}, handshake.MaxRefusalMessage+1)...)} {
		if _, err := parseRefusal(bad); !errors.Is(err, errMalformed) {
			t.Errorf("parseRefusal(%.8x...) = %v, want errMalformed", bad, err)
		}
	}
}

func TestRefusalErrors(t *testing.T) {
	for code, want := range map[refusalCode]error{
		refuseExpired: ErrExpired,
		refuseVoid:    ErrVoid,
		refuseBusy:    ErrBusy,
		refuseUnknown: ErrUnknownInvitation,
		refuseVersion: ErrVersion,
	} {
		err := refusalError("192.0.2.1:5999", refusal{code: code, message: "why"})
		if !errors.Is(err, want) {
			t.Errorf("code %d: %v, want %v", code, err, want)
		}
		if !strings.Contains(err.Error(), `"why"`) || !strings.Contains(err.Error(), "192.0.2.1:5999") {
			t.Errorf("code %d: error %q lacks the address or the novice's message", code, err)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, v := range []verdict{{verdictOK, 5}, {verdictWrongPassword, 3}, {verdictVoid, 0}, {verdictBusy, 0}} {
		got, err := parseVerdict(v.marshal())
		if err != nil || got != v {
			t.Errorf("round trip %+v: %+v, %v", v, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {0, 1, 2}, {4, 0}, {0xff, 0}} {
		if _, err := parseVerdict(bad); !errors.Is(err, errMalformed) {
			t.Errorf("parseVerdict(%x) = %v, want errMalformed", bad, err)
		}
	}
	if got := (verdict{verdictWrongPassword, 1000}).marshal()[1]; got != 255 {
		t.Errorf("attempts left saturate at %d, want 255", got)
	}
}

func TestHandshakeErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *HandshakeError
		want []string
	}{
		{&HandshakeError{Kind: ErrWrongPassword, Addr: "a:1", AttemptsLeft: 3}, []string{"a:1", "wrong password", "3 attempts left"}},
		{&HandshakeError{Kind: ErrWrongPassword, AttemptsLeft: 0}, []string{"void", "new invitation"}},
		{&HandshakeError{Kind: ErrWrongPassword, AttemptsLeft: -1}, []string{"wrong password"}},
		{&HandshakeError{Kind: ErrUnreachable, AttemptsLeft: -1, Cause: errors.New("refused")}, []string{"firewall", "refused"}},
		{&HandshakeError{Kind: ErrUnreachable, Addr: "b:2", AttemptsLeft: -1, Cause: errors.New("refused")}, []string{"b:2: unreachable: refused"}},
		{&HandshakeError{Kind: ErrBusy, AttemptsLeft: -1, PeerMessage: "x\"y"}, []string{"try again", `"x\"y"`}},
	} {
		msg := tc.err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q lacks %q", msg, w)
			}
		}
		if tc.err.AttemptsLeft < 0 && strings.Contains(msg, "attempts left") {
			t.Errorf("%q mentions attempts left though they are unknown", msg)
		}
	}
}
