package auth

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/pake"
	"github.com/assist-project/assist/transport/internal/handshake"
)

const (
	testID       = "inv-1234"
	testPassword = "crayon-harbor"
	testName     = "Max"
)

var (
	expertFP = bytes.Repeat([]byte{0xe1}, 32)
	noviceFP = bytes.Repeat([]byte{0x0a}, 32)
)

type result struct {
	res  *pake.Result
	name string
	err  error
}

// pipe returns the two ends of an in-memory stream that the test closes
// on cleanup, with a deadline so a stuck handshake fails instead of
// hanging.
func pipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	d := time.Now().Add(10 * time.Second)
	a.SetDeadline(d)
	b.SetDeadline(d)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// run runs both handshakes against each other. Each end closes its side
// when it is done, as the transports do, so the other never waits for
// a message that will not come.
func run(t *testing.T, e, n Params, ebind, nbind []byte) (result, result) {
	t.Helper()
	ec, nc := pipe(t)
	done := make(chan result, 1)
	go func() {
		res, name, err := Novice(nc, n, nbind)
		nc.Close()
		done <- result{res, name, err}
	}()
	res, err := Expert(ec, e, ebind)
	ec.Close()
	return result{res: res, err: err}, <-done
}

func TestHandshake(t *testing.T) {
	bind := BindingContext(expertFP, noviceFP)
	good := Params{InvitationID: testID, Password: testPassword, Name: testName}
	tests := []struct {
		name         string
		expert       Params
		nbind        []byte
		wantE, wantN error
		counted      bool // the novice must count the attempt
		peerMessage  bool
	}{
		{name: "ok", expert: good},
		{name: "wrong password", expert: Params{InvitationID: testID, Password: "crayon-harpoon", Name: testName},
			wantE: ErrWrongPassword, wantN: ErrWrongPassword, counted: true},
		{name: "other certificates", expert: good, nbind: BindingContext(noviceFP, expertFP),
			wantE: ErrWrongPassword, wantN: ErrWrongPassword, counted: true},
		{name: "unknown invitation", expert: Params{InvitationID: "inv-other", Password: testPassword},
			wantE: ErrUnknownInvitation, wantN: ErrUnknownInvitation, peerMessage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nbind := bind
			if tt.nbind != nil {
				nbind = tt.nbind
			}
			e, n := run(t, tt.expert, Params{InvitationID: testID, Password: testPassword}, bind, nbind)
			if tt.wantE == nil {
				if e.err != nil || n.err != nil {
					t.Fatalf("Expert: %v, Novice: %v", e.err, n.err)
				}
				if n.name != testName {
					t.Errorf("Novice got name %q, want %q", n.name, testName)
				}
				if !bytes.Equal(e.res.SessionKey("x", 32), n.res.SessionKey("x", 32)) {
					t.Error("the two ends derive different session keys")
				}
				return
			}
			if !errors.Is(e.err, tt.wantE) {
				t.Errorf("Expert: %v, want %v", e.err, tt.wantE)
			}
			if !errors.Is(n.err, tt.wantN) {
				t.Errorf("Novice: %v, want %v", n.err, tt.wantN)
			}
			if got := errors.Is(n.err, ErrWrongPassword); got != tt.counted {
				t.Errorf("Novice counts the attempt: %v, want %v (%v)", got, tt.counted, n.err)
			}
			var he *HandshakeError
			if !errors.As(e.err, &he) {
				t.Fatalf("Expert's error %T is not a *HandshakeError", e.err)
			}
			if (he.PeerMessage != "") != tt.peerMessage {
				t.Errorf("PeerMessage %q", he.PeerMessage)
			}
			if strings.Contains(e.err.Error(), testPassword) || strings.Contains(n.err.Error(), testPassword) {
				t.Error("an error names the password")
			}
		})
	}
}

func TestBadParams(t *testing.T) {
	c, _ := pipe(t)
	for _, p := range []Params{
		{InvitationID: testID},
		{InvitationID: "", Password: testPassword},
		{InvitationID: testID, Password: testPassword, Name: "bad\nname"},
	} {
		_, err := Expert(c, p, nil)
		var he *HandshakeError
		if !errors.As(err, &he) || he.Stage != "config" {
			t.Errorf("Expert(%+v): %v, want a config error", p, err)
		}
	}
	if _, _, err := Novice(c, Params{InvitationID: testID}, nil); err == nil {
		t.Error("Novice with an empty password: no error")
	}
}

// TestExpertAgainstHostileNovice: whatever a peer answers, the expert gets
// a *HandshakeError of the right kind and no session.
func TestExpertAgainstHostileNovice(t *testing.T) {
	good := Params{InvitationID: testID, Password: testPassword, Name: testName}
	tests := []struct {
		name   string
		novice func(rw io.ReadWriter)
		want   error
	}{
		{"hangs up", func(io.ReadWriter) {}, ErrUnreachable},
		{"version refusal", func(rw io.ReadWriter) {
			pake.ReadMessage(rw, handshake.MaxHello)
			pake.WriteMessage(rw, kindRefusal, marshalRefusal(refuseVersion, "speaks version 2"))
		}, ErrVersion},
		{"malformed refusal", func(rw io.ReadWriter) {
			pake.ReadMessage(rw, handshake.MaxHello)
			pake.WriteMessage(rw, kindRefusal, []byte{refuseVersion, 0x1b, '['})
		}, ErrNotAssist},
		{"oversized frame", func(rw io.ReadWriter) {
			pake.ReadMessage(rw, handshake.MaxHello)
			rw.Write([]byte{kindShare, 0xff, 0xff, 0xff, 0xff})
		}, ErrNotAssist},
		{"wrong kind", func(rw io.ReadWriter) {
			pake.ReadMessage(rw, handshake.MaxHello)
			pake.WriteMessage(rw, kindVerdict, []byte{verdictOK})
		}, ErrNotAssist},
		{"bad share", func(rw io.ReadWriter) {
			pake.ReadMessage(rw, handshake.MaxHello)
			pake.WriteMessage(rw, kindShare, make([]byte, pake.MessageSize))
		}, ErrNotAssist},
		{"early verdict", func(rw io.ReadWriter) {
			share(t, rw)
			pake.ReadMessage(rw, pake.MessageSize)
			pake.WriteMessage(rw, kindVerdict, []byte{verdictWrongPassword})
		}, ErrWrongPassword},
		{"unknown verdict", func(rw io.ReadWriter) {
			share(t, rw)
			pake.ReadMessage(rw, pake.MessageSize)
			pake.WriteMessage(rw, kindVerdict, []byte{9})
		}, ErrNotAssist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ec, nc := pipe(t)
			go func() {
				tt.novice(nc)
				nc.Close()
			}()
			res, err := Expert(ec, good, BindingContext(expertFP, noviceFP))
			if res != nil || !errors.Is(err, tt.want) {
				t.Errorf("Expert: %v, %v; want %v", res, err, tt.want)
			}
		})
	}
}

// share reads the hello and answers with a valid share of a novice that
// does not know the password.
func share(t *testing.T, rw io.ReadWriter) {
	pake.ReadMessage(rw, handshake.MaxHello)
	ex, err := pake.New(pake.Config{Password: []byte("guess"), Context: []byte("x"), SessionID: []byte(testID), Role: pake.Responder})
	if err != nil {
		t.Error(err)
		return
	}
	pake.WriteMessage(rw, kindShare, ex.Message())
}

func TestHandshakeErrorText(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  *HandshakeError
		want string
	}{
		{&HandshakeError{Stage: "pake", Kind: ErrWrongPassword}, "rtc: pake: " + ErrWrongPassword.Error()},
		{&HandshakeError{Stage: "hello", Kind: ErrVersion, PeerMessage: "v2"}, "rtc: hello: " + ErrVersion.Error() + ` (the other computer says: "v2")`},
		{&HandshakeError{Stage: "config", Cause: cause}, "rtc: config: handshake failed: boom"},
		{&HandshakeError{Kind: ErrNotAssist, Cause: errors.Join(ErrNotAssist, cause)}, "rtc: " + ErrNotAssist.Error() + "\nboom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	e := &HandshakeError{Kind: ErrUnreachable, Cause: cause}
	if !errors.Is(e, ErrUnreachable) || !errors.Is(e, cause) {
		t.Error("errors.Is does not see both the kind and the cause")
	}
}

func TestRefusalRoundTrip(t *testing.T) {
	long := strings.Repeat("é", handshake.MaxRefusalMessage) // 2 bytes each: cut at a rune boundary
	for _, msg := range []string{"", "not serving that invitation", long} {
		code, got, err := parseRefusal(marshalRefusal(refuseUnknown, msg))
		if err != nil || code != refuseUnknown || !strings.HasPrefix(msg, got) || len(got) > handshake.MaxRefusalMessage {
			t.Errorf("round trip of %d bytes: %d, %d bytes, %v", len(msg), code, len(got), err)
		}
	}
}

func FuzzParseRefusal(f *testing.F) {
	f.Add(marshalRefusal(refuseUnknown, "not serving that invitation"))
	f.Add([]byte{})
	f.Add([]byte{5, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg, err := parseRefusal(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error does not wrap errMalformed: %v", err)
			}
			return
		}
		if out := marshalRefusal(code, msg); !bytes.Equal(out, b) {
			t.Fatalf("round trip of %q: %q", b, out)
		}
	})
}

// TestAttemptsLeft: after a wrong password the expert learns how many
// attempts are left when the novice counts them, and still gets a plain
// wrong-password error from a novice that does not say (an older one).
func TestAttemptsLeft(t *testing.T) {
	bind := BindingContext(expertFP, noviceFP)
	wrong := Params{InvitationID: testID, Password: "crayon-harpoon", Name: testName}
	tests := []struct {
		name   string
		left   int
		counts bool
		want   string
	}{
		{name: "three left", left: 3, counts: true, want: "(3 attempts left)"},
		{name: "void", left: 0, counts: true, want: "(no attempts left: the invitation is now void; ask for a new invitation)"},
		{name: "older novice", counts: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			np := Params{InvitationID: testID, Password: testPassword}
			if tt.counts {
				np.AttemptFailed = func() int { calls++; return tt.left }
			}
			e, n := run(t, wrong, np, bind, bind)
			if !errors.Is(e.err, ErrWrongPassword) || !errors.Is(n.err, ErrWrongPassword) {
				t.Fatalf("Expert: %v, Novice: %v; want wrong password", e.err, n.err)
			}
			var he *HandshakeError
			if !errors.As(e.err, &he) {
				t.Fatalf("Expert's error %T is not a *HandshakeError", e.err)
			}
			if he.AttemptsKnown != tt.counts || he.AttemptsLeft != tt.left {
				t.Errorf("Expert: attempts left %d (known %v), want %d (known %v)", he.AttemptsLeft, he.AttemptsKnown, tt.left, tt.counts)
			}
			msg := e.err.Error()
			if !strings.Contains(msg, "wrong password") {
				t.Errorf("Expert's error %q does not say wrong password", msg)
			}
			if tt.want != "" && !strings.Contains(msg, tt.want) {
				t.Errorf("Expert's error %q does not say %q", msg, tt.want)
			}
			if !tt.counts && strings.Contains(msg, "attempts left") {
				t.Errorf("Expert's error %q names attempts the novice never told", msg)
			}
			if tt.counts && calls != 1 {
				t.Errorf("AttemptFailed called %d times, want 1", calls)
			}
		})
	}
	t.Run("not called on success", func(t *testing.T) {
		np := Params{InvitationID: testID, Password: testPassword, AttemptFailed: func() int {
			t.Error("AttemptFailed called for the right password")
			return 0
		}}
		e, n := run(t, Params{InvitationID: testID, Password: testPassword, Name: testName}, np, bind, bind)
		if e.err != nil || n.err != nil {
			t.Fatalf("Expert: %v, Novice: %v", e.err, n.err)
		}
	})
}

// TestAttemptsAfterVerdictOnly: whatever follows a wrong-password verdict
// (nothing, another kind, a malformed count), the expert's error is a
// plain wrong password without a count.
func TestAttemptsAfterVerdictOnly(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after []byte
	}{
		{"nothing", nil},
		{"other kind", []byte{kindVerdict, 0, 1, 1}},
		{"two bytes", []byte{kindAttempts, 0, 2, 1, 1}},
		{"empty", []byte{kindAttempts, 0, 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.after)
			if left, ok := readAttempts(r); ok {
				t.Errorf("readAttempts(%x) = %d, true; want no count", tt.after, left)
			}
		})
	}
}

func FuzzParseAttempts(f *testing.F) {
	f.Add(handshake.MarshalAttempts(4))
	f.Add([]byte{})
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		left, err := handshake.ParseAttempts(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error does not wrap errMalformed: %v", err)
			}
			return
		}
		if out := handshake.MarshalAttempts(left); !bytes.Equal(out, b) {
			t.Fatalf("round trip of %x: %x", b, out)
		}
		// The same bytes framed as the expert reads them give the same count.
		var framed bytes.Buffer
		pake.WriteMessage(&framed, kindAttempts, b)
		if got, ok := readAttempts(&framed); !ok || got != left {
			t.Fatalf("readAttempts of %x: %d, %v; want %d", b, got, ok, left)
		}
	})
}
