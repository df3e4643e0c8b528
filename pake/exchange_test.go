package pake

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// cfg returns a Config for one side; the context stands for "assist/1 direct"
// followed by a TLS exporter value.
func cfg(role Role, password, context string) Config {
	return Config{
		Password:  []byte(password),
		Context:   []byte("assist/1 direct\x00" + context),
		SessionID: []byte("session-0123456789"),
		Role:      role,
	}
}

func mustNew(t testing.TB, c Config) *Exchange {
	t.Helper()
	ex, err := New(c)
	if err != nil {
		t.Fatalf("New(%v): %v", c.Role, err)
	}
	return ex
}

// exchange runs both sides' first message and Finish, as over a perfect wire.
func exchange(t testing.TB, ca, cb Config) (ra, rb *Result) {
	t.Helper()
	a, b := mustNew(t, ca), mustNew(t, cb)
	ra, err := a.Finish(b.Message())
	if err != nil {
		t.Fatalf("a.Finish: %v", err)
	}
	rb, err = b.Finish(a.Message())
	if err != nil {
		t.Fatalf("b.Finish: %v", err)
	}
	return ra, rb
}

func TestRoundTrip(t *testing.T) {
	ra, rb := exchange(t, cfg(Initiator, "7-crayon-harbor", "exp"), cfg(Responder, "7-crayon-harbor", "exp"))
	ta, tb := ra.Confirmation(), rb.Confirmation()
	if len(ta) != ConfirmationSize || len(tb) != ConfirmationSize {
		t.Fatalf("confirmation sizes %d, %d, want %d", len(ta), len(tb), ConfirmationSize)
	}
	if bytes.Equal(ta, tb) {
		t.Error("both sides send the same confirmation tag; a reflected tag would verify")
	}
	if err := rb.Verify(ta); err != nil {
		t.Fatalf("responder Verify: %v", err)
	}
	if err := ra.Verify(tb); err != nil {
		t.Fatalf("initiator Verify: %v", err)
	}
	for _, n := range []int{1, 16, 32, 64, 65, 1000} {
		ka, kb := ra.SessionKey("display", n), rb.SessionKey("display", n)
		if len(ka) != n || !bytes.Equal(ka, kb) {
			t.Errorf("SessionKey(display, %d): %x vs %x", n, ka, kb)
		}
	}
	if bytes.Equal(ra.SessionKey("display", 32), ra.SessionKey("control", 32)) {
		t.Error("different labels give the same key")
	}
	if bytes.Equal(ra.SessionKey("display", 32), ra.secret.isk[:32]) {
		t.Error("SessionKey exposes ISK")
	}
}

// TestFreshness: two runs with the same inputs give unrelated keys, because
// each side samples a fresh scalar.
func TestFreshness(t *testing.T) {
	var keys [2][]byte
	for i := range keys {
		ra, rb := exchange(t, cfg(Initiator, "pw", "x"), cfg(Responder, "pw", "x"))
		if err := ra.Verify(rb.Confirmation()); err != nil {
			t.Fatal(err)
		}
		keys[i] = ra.SessionKey("k", 32)
	}
	if bytes.Equal(keys[0], keys[1]) {
		t.Error("two exchanges gave the same session key")
	}
}

// TestMismatch: every input the two sides must agree on makes both Verify
// calls fail with ErrWrongPassword when it differs.
func TestMismatch(t *testing.T) {
	tests := []struct {
		name string
		a, b Config
	}{
		{"wrong password", cfg(Initiator, "7-crayon-harbor", "x"), cfg(Responder, "7-crayon-harbour", "x")},
		// A relay that terminates two TLS connections sees two exporter
		// values, so the two ends have different contexts.
		{"different context (MITM relay)", cfg(Initiator, "pw", "exporter-1"), cfg(Responder, "pw", "exporter-2")},
		{"different session id", cfg(Initiator, "pw", "x"), func() Config { c := cfg(Responder, "pw", "x"); c.SessionID = []byte("other"); return c }()},
		{"session id on one side only", func() Config { c := cfg(Initiator, "pw", "x"); c.SessionID = nil; return c }(), cfg(Responder, "pw", "x")},
		{"both initiators", cfg(Initiator, "pw", "x"), cfg(Initiator, "pw", "x")},
		{"both responders", cfg(Responder, "pw", "x"), cfg(Responder, "pw", "x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := exchange(t, tc.a, tc.b)
			ta, tb := ra.Confirmation(), rb.Confirmation()
			if err := rb.Verify(ta); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("b.Verify = %v, want ErrWrongPassword", err)
			}
			if err := ra.Verify(tb); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("a.Verify = %v, want ErrWrongPassword", err)
			}
		})
	}
}

// TestVerifyFailureIsFinal: after one wrong tag, even the right one is refused,
// and no session key comes out.
func TestVerifyFailureIsFinal(t *testing.T) {
	ra, rb := exchange(t, cfg(Initiator, "pw", "x"), cfg(Responder, "pw", "x"))
	good := ra.Confirmation()
	bad := bytes.Clone(good)
	bad[0] ^= 1
	if err := rb.Verify(bad); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("Verify(bad) = %v", err)
	}
	if err := rb.Verify(good); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("Verify(good) after a failure = %v, want ErrWrongPassword", err)
	}
	assertPanics(t, "SessionKey after failed Verify", func() { rb.SessionKey("k", 32) })
}

func TestVerifyBadTags(t *testing.T) {
	tests := map[string]func(ra, rb *Result) []byte{
		"nil":   func(ra, rb *Result) []byte { return nil },
		"short": func(ra, rb *Result) []byte { return ra.Confirmation()[:ConfirmationSize-1] },
		"long":  func(ra, rb *Result) []byte { return append(ra.Confirmation(), 0) },
		"zeros": func(ra, rb *Result) []byte { return make([]byte, ConfirmationSize) },
		// The responder's own tag bounced back to it: only the role in the
		// tag tells the two apart.
		"reflected": func(ra, rb *Result) []byte { return rb.Confirmation() },
	}
	for name, tag := range tests {
		t.Run(name, func(t *testing.T) {
			ra, rb := exchange(t, cfg(Initiator, "pw", "x"), cfg(Responder, "pw", "x"))
			if err := rb.Verify(tag(ra, rb)); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("Verify = %v, want ErrWrongPassword", err)
			}
		})
	}
}

// TestReplay: messages and tags recorded from one session do not
// authenticate another session with the same password.
func TestReplay(t *testing.T) {
	// An eavesdropper records a complete, successful session.
	oldA, oldB := mustNew(t, cfg(Initiator, "pw", "x")), mustNew(t, cfg(Responder, "pw", "x"))
	oldRB, err := oldB.Finish(oldA.Message())
	if err != nil {
		t.Fatal(err)
	}
	oldTagB := oldRB.Confirmation()

	// Later it replays the novice's old share and tag to a new expert.
	a := mustNew(t, cfg(Initiator, "pw", "x"))
	ra, err := a.Finish(oldB.Message())
	if err != nil {
		t.Fatalf("Finish(replayed share) = %v; a valid point should pass Finish", err)
	}
	if err := ra.Verify(oldTagB); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("Verify(replayed tag) = %v, want ErrWrongPassword", err)
	}

	// And replays the expert's old share to a new novice, which answers with
	// its tag; the old expert tag does not match it either.
	oldRA, err := oldA.Finish(oldB.Message())
	if err != nil {
		t.Fatal(err)
	}
	b := mustNew(t, cfg(Responder, "pw", "x"))
	rb, err := b.Finish(oldA.Message())
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.Verify(oldRA.Confirmation()); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("Verify(replayed initiator tag) = %v, want ErrWrongPassword", err)
	}
}

// TestReflectedShare: an attacker bouncing a party's own share back to it is
// refused at Finish.
func TestReflectedShare(t *testing.T) {
	for _, role := range []Role{Initiator, Responder} {
		ex := mustNew(t, cfg(role, "pw", "x"))
		if _, err := ex.Finish(ex.Message()); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%v: Finish(own share) = %v, want ErrBadMessage", role, err)
		}
	}
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// badShares are peer messages Finish must refuse: the identity, encodings
// that are not canonical (RFC 9496 Section 4.3.1), and wrong lengths.
var badShares = map[string][]byte{
	"empty":    nil,
	"31 bytes": make([]byte, 31),
	"33 bytes": make([]byte, 33),
	// G.I, the identity element (draft B.3.11 Y_i2).
	"identity": make([]byte, 32),
	// Not on the group (draft B.3.11 Y_i1).
	"invalid Y_i1": unhex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
	// The valid point of draft B.3.10 with bit 255 set: non-canonical.
	"valid point with bit 255 set": unhex("2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a59c"),
	// Field elements encoded without reduction mod p = 2^255-19.
	"p (non-canonical zero)": unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	"p+2 (non-canonical 2)":  unhex("efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	// s must be non-negative (even): 1 is negative.
	"negative s = 1": unhex("0100000000000000000000000000000000000000000000000000000000000000"),
	"all ones":       bytes.Repeat([]byte{0xff}, 32),
}

func TestFinishRejectsBadShares(t *testing.T) {
	for name, share := range badShares {
		t.Run(name, func(t *testing.T) {
			ex := mustNew(t, cfg(Initiator, "pw", "x"))
			r, err := ex.Finish(share)
			if !errors.Is(err, ErrBadMessage) || r != nil {
				t.Fatalf("Finish = %v, %v; want ErrBadMessage", r, err)
			}
		})
	}
}

func TestFinishTwice(t *testing.T) {
	a, b := mustNew(t, cfg(Initiator, "pw", "x")), mustNew(t, cfg(Responder, "pw", "x"))
	if _, err := a.Finish(make([]byte, 32)); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("first Finish = %v", err)
	}
	// A failed attempt burns the exchange: the scalar is gone.
	if _, err := a.Finish(b.Message()); !errors.Is(err, ErrUsed) {
		t.Fatalf("second Finish = %v, want ErrUsed", err)
	}
	if a.secret != nil {
		t.Error("scalar still held after Finish")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"empty password", Config{Context: []byte("c")}},
		{"empty context", Config{Password: []byte("pw")}},
		{"bad role", Config{Password: []byte("pw"), Context: []byte("c"), Role: 7}},
		{"negative role", Config{Password: []byte("pw"), Context: []byte("c"), Role: -1}},
	}
	for _, tc := range tests {
		if ex, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New = %v, want an error", tc.name, ex)
		}
	}
}

// TestNewDoesNotKeepInputs: the caller may wipe its password buffer, and
// changing it afterwards changes nothing.
func TestNewDoesNotKeepInputs(t *testing.T) {
	c := cfg(Initiator, "pw", "x")
	a := mustNew(t, c)
	clear(c.Password)
	clear(c.SessionID)
	b := mustNew(t, cfg(Responder, "pw", "x"))
	ra, _ := a.Finish(b.Message())
	rb, _ := b.Finish(a.Message())
	if err := rb.Verify(ra.Confirmation()); err != nil {
		t.Fatalf("Verify after the caller wiped its buffers: %v", err)
	}
}

func TestMessageIsCopy(t *testing.T) {
	ex := mustNew(t, cfg(Initiator, "pw", "x"))
	m := ex.Message()
	want := bytes.Clone(m)
	m[0] ^= 0xff
	if !bytes.Equal(ex.Message(), want) {
		t.Error("Message returns the internal buffer")
	}
}

func TestSessionKeyMisuse(t *testing.T) {
	ra, rb := exchange(t, cfg(Initiator, "pw", "x"), cfg(Responder, "pw", "x"))
	assertPanics(t, "SessionKey before Verify", func() { ra.SessionKey("k", 32) })
	if err := ra.Verify(rb.Confirmation()); err != nil {
		t.Fatal(err)
	}
	assertPanics(t, "SessionKey(0)", func() { ra.SessionKey("k", 0) })
	assertPanics(t, "SessionKey(too long)", func() { ra.SessionKey("k", 255*64+1) })
	if k := ra.SessionKey("k", 255*64); len(k) != 255*64 {
		t.Errorf("SessionKey(max) = %d bytes", len(k))
	}
}

func assertPanics(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", name)
		}
	}()
	f()
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{Initiator: "initiator", Responder: "responder", 5: "Role(5)"} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

// TestZeroValues: zero values fail loudly, never with a nil dereference deep
// inside, and never verify.
func TestZeroValues(t *testing.T) {
	var e Exchange
	if _, err := e.Finish(make([]byte, 32)); err == nil {
		t.Error("zero Exchange finished")
	}
	var r Result
	if err := r.Verify(make([]byte, ConfirmationSize)); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("zero Result Verify = %v", err)
	}
	assertPanics(t, "zero Result Confirmation", func() { r.Confirmation() })
	assertPanics(t, "zero Result SessionKey", func() { r.SessionKey("k", 32) })
}
