package pairing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipe is one end of an in-memory, ordered Channel.
type pipe struct {
	in  <-chan []byte
	out chan<- []byte
}

func (p pipe) Send(b []byte) error {
	p.out <- bytes.Clone(b)
	return nil
}

func (p pipe) Recv(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// newPipe returns two connected Channel ends. The buffers hold a whole
// exchange, so Send never blocks.
func newPipe() (pipe, pipe) {
	a, b := make(chan []byte, 8), make(chan []byte, 8)
	return pipe{in: a, out: b}, pipe{in: b, out: a}
}

func info(t testing.TB, seed byte, user, display string) (Info, ed25519.PrivateKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return Info{Key: priv.Public().(ed25519.PublicKey), User: user, Display: display}, priv
}

type side struct {
	ch      Channel
	role    Role
	secret  string
	pairID  string
	purpose string
	me      Info
}

type outcome struct {
	got Info
	err error
}

// runBoth runs both sides concurrently and returns their outcomes.
func runBoth(t *testing.T, a, b side) (outcome, outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var oa, ob outcome
	var wg sync.WaitGroup
	wg.Go(func() { oa.got, oa.err = Run(ctx, a.ch, a.role, a.secret, a.pairID, a.purpose, a.me) })
	wg.Go(func() { ob.got, ob.err = Run(ctx, b.ch, b.role, b.secret, b.pairID, b.purpose, b.me) })
	wg.Wait()
	return oa, ob
}

func sameInfo(a, b Info) bool {
	return a.Key.Equal(b.Key) && a.User == b.User && a.Display == b.Display
}

func TestRunAgree(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada Lovelace")
	bob, _ := info(t, 2, "bob", "Bob ☂")
	for _, purpose := range []string{PurposeContact, PurposeDevice} {
		t.Run(purpose, func(t *testing.T) {
			ca, cb := newPipe()
			// The joiner types the code its own way: lower case, O for 0.
			oa, ob := runBoth(t,
				side{ca, Opener, "9XQT-AB0D", "K7M2", purpose, ada},
				side{cb, Joiner, "9xqt abod", "k7m2", purpose, bob})
			if oa.err != nil || ob.err != nil {
				t.Fatalf("opener: %v; joiner: %v", oa.err, ob.err)
			}
			if !sameInfo(oa.got, bob) || !sameInfo(ob.got, ada) {
				t.Errorf("opener got %+v, joiner got %+v", oa.got, ob.got)
			}
		})
	}
}

func TestRunWrongCode(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada")
	bob, _ := info(t, 2, "bob", "Bob")
	for _, tc := range []struct {
		name string
		a, b side
	}{
		{"secret", side{role: Opener, secret: "9XQTABCD", pairID: "K7M2", purpose: PurposeContact},
			side{role: Joiner, secret: "9XQTABCE", pairID: "K7M2", purpose: PurposeContact}},
		// A relay that joins two pairings (two ids) or a contact pairing
		// to a device link gets nowhere, even with the same secret.
		{"pair id", side{role: Opener, secret: "9XQTABCD", pairID: "K7M2", purpose: PurposeContact},
			side{role: Joiner, secret: "9XQTABCD", pairID: "K7M3", purpose: PurposeContact}},
		{"purpose", side{role: Opener, secret: "9XQTABCD", pairID: "K7M2", purpose: PurposeContact},
			side{role: Joiner, secret: "9XQTABCD", pairID: "K7M2", purpose: PurposeDevice}},
		{"same role", side{role: Opener, secret: "9XQTABCD", pairID: "K7M2", purpose: PurposeContact},
			side{role: Opener, secret: "9XQTABCD", pairID: "K7M2", purpose: PurposeContact}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.a.ch, tc.b.ch = newPipe()
			tc.a.me, tc.b.me = ada, bob
			oa, ob := runBoth(t, tc.a, tc.b)
			if !errors.Is(oa.err, ErrWrongCode) || !errors.Is(ob.err, ErrWrongCode) {
				t.Fatalf("opener: %v; joiner: %v; want ErrWrongCode on both", oa.err, ob.err)
			}
		})
	}
}

// mitm relays between the two ends and lets edit change each message
// (from is the role of its sender).
func mitm(a, b pipe, edit func(from Role, msg []byte) []byte) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	relay := func(from Role, src, dst pipe) {
		for {
			m, err := src.Recv(ctx)
			if err != nil {
				return
			}
			dst.Send(edit(from, m))
		}
	}
	wg.Go(func() { relay(Opener, a, b) })
	wg.Go(func() { relay(Joiner, b, a) })
	return func() { cancel(); wg.Wait() }
}

// TestRunSubstitutedKey: a relay that knows no secret swaps the opener's
// key in its identity message for its own; the joiner must refuse.
func TestRunSubstitutedKey(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada")
	bob, _ := info(t, 2, "bob", "Bob")
	eve, _ := info(t, 3, "eve", "Eve")
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
	}{
		{"key", func(m map[string]any) { m["key"] = b64.EncodeToString(eve.Key) }},
		{"user", func(m map[string]any) { m["user"] = "eve" }},
		{"display", func(m map[string]any) { m["display"] = "Ada (bank)" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, ma := newPipe()
			mb, cb := newPipe()
			stop := mitm(ma, mb, func(from Role, msg []byte) []byte {
				var m map[string]any
				json.Unmarshal(msg, &m)
				if from == Opener && m["step"] == stepID {
					tc.edit(m)
					msg, _ = json.Marshal(m)
				}
				return msg
			})
			defer stop()
			_, ob := runBoth(t, side{ca, Opener, "9XQTABCD", "K7M2", PurposeContact, ada},
				side{cb, Joiner, "9XQTABCD", "K7M2", PurposeContact, bob})
			if !errors.Is(ob.err, ErrTampered) {
				t.Fatalf("joiner: %v, want ErrTampered", ob.err)
			}
		})
	}
}

// TestRunReflectedIdentity: the relay sends the joiner's own identity back
// to it in place of the opener's: the per-direction MAC keys refuse it.
func TestRunReflectedIdentity(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada")
	bob, _ := info(t, 2, "bob", "Bob")
	ca, ma := newPipe()
	mb, cb := newPipe()
	// The relay holds the opener's identity until the joiner's has come
	// by, and sends that back in its place.
	joinerID := make(chan []byte, 1)
	stop := mitm(ma, mb, func(from Role, msg []byte) []byte {
		if !bytes.Contains(msg, []byte(`"step":"id"`)) {
			return msg
		}
		if from == Joiner {
			joinerID <- msg
			return msg
		}
		return <-joinerID
	})
	defer stop()
	_, ob := runBoth(t, side{ca, Opener, "9XQTABCD", "K7M2", PurposeContact, ada},
		side{cb, Joiner, "9XQTABCD", "K7M2", PurposeContact, bob})
	if !errors.Is(ob.err, ErrTampered) {
		t.Fatalf("joiner: %v, want ErrTampered", ob.err)
	}
}

// TestRunMITMGuessing: a relay that runs its own exchange with each side,
// with a guessed secret, fails both confirmations.
func TestRunMITMGuessing(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada")
	bob, _ := info(t, 2, "bob", "Bob")
	eve, _ := info(t, 3, "eve", "Eve")
	ca, ea := newPipe()
	eb, cb := newPipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var errs [4]error
	wg.Go(func() { _, errs[0] = Run(ctx, ca, Opener, "9XQTABCD", "K7M2", PurposeContact, ada) })
	wg.Go(func() { _, errs[1] = Run(ctx, ea, Joiner, "00000000", "K7M2", PurposeContact, eve) })
	wg.Go(func() { _, errs[2] = Run(ctx, eb, Opener, "00000000", "K7M2", PurposeContact, eve) })
	wg.Go(func() { _, errs[3] = Run(ctx, cb, Joiner, "9XQTABCD", "K7M2", PurposeContact, bob) })
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrWrongCode) {
			t.Errorf("exchange end %d: %v, want ErrWrongCode", i, err)
		}
	}
}

func TestRunMalformedPeer(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, msg := range []string{`not json`, `{"step":"confirm","v":"AAAA"}`, `{"step":"share","v":"` + b64.EncodeToString(make([]byte, 31)) + `"}`} {
		a, b := newPipe()
		b.Send([]byte(msg))
		_, err := Run(ctx, a, Opener, "9XQTABCD", "K7M2", PurposeContact, ada)
		if !errors.Is(err, errMalformed) {
			t.Errorf("peer sent %s: Run = %v, want malformed", msg, err)
		}
	}
}

func TestRunChecksArguments(t *testing.T) {
	ada, _ := info(t, 1, "ada", "Ada")
	a, _ := newPipe()
	ctx := context.Background()
	for _, tc := range []struct {
		secret, pairID, purpose string
		me                      Info
	}{
		{"9XQTABC", "K7M2", PurposeContact, ada},
		{"9XQTABCD", "K7M", PurposeContact, ada},
		{"9XQTABCD", "K7M2", "friend", ada},
		{"9XQTABCD", "K7M2", PurposeContact, Info{Key: ada.Key, User: "Ada", Display: "Ada"}},
		{"9XQTABCD", "K7M2", PurposeContact, Info{Key: ada.Key, User: "ada", Display: "A\u202eda"}},
	} {
		if _, err := Run(ctx, a, Opener, tc.secret, tc.pairID, tc.purpose, tc.me); err == nil {
			t.Errorf("Run(%q, %q, %q, %+v) succeeded", tc.secret, tc.pairID, tc.purpose, tc.me)
		}
	}
}

func TestCode(t *testing.T) {
	c, err := NewCode("k7m2")
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	if len(s) != 14 || s[:5] != "K7M2-" || s[9] != '-' {
		t.Fatalf("code %q, want K7M2-XXXX-XXXX", s)
	}
	back, err := ParseCode(s)
	if err != nil || back != c {
		t.Fatalf("ParseCode(%q) = %+v, %v; want %+v", s, back, err, c)
	}
	for _, tc := range []struct {
		in   string
		want Code
		ok   bool
	}{
		{"K7M2-9XQT-ABCD", Code{"K7M2", "9XQTABCD"}, true},
		{" k7m2 9xqt abcd\n", Code{"K7M2", "9XQTABCD"}, true},
		{"K7M29XQTABCD", Code{"K7M2", "9XQTABCD"}, true},
		{"K7M2-9XQT-ABOI", Code{"K7M2", "9XQTAB01"}, true},
		{"K7M2\u20139XQT\u2013ABCD", Code{"K7M2", "9XQTABCD"}, true},
		{"K7M2-9XQT-ABC", Code{}, false},
		{"K7M2-9XQT-ABCDE", Code{}, false},
		{"K7M2-9XQT-ABCU", Code{}, false},
		{"K7M2_9XQT_ABCD", Code{}, false},
		{"", Code{}, false},
	} {
		got, err := ParseCode(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseCode(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if _, err := NewCode("K7M"); err == nil {
		t.Error("NewCode accepted a 3-symbol id")
	}
	seen := map[string]bool{}
	for range 100 {
		s, err := NewSecret()
		if err != nil || len(s) != SecretSymbols || seen[s] {
			t.Fatalf("NewSecret = %q, %v (or repeated)", s, err)
		}
		seen[s] = true
	}
}

func TestCheckNames(t *testing.T) {
	for _, tc := range []struct {
		user string
		ok   bool
	}{
		{"ada", true}, {"a", true}, {"0day", true}, {"ada.l_x-1", true}, {fmt.Sprintf("%032d", 0), true},
		{"", false}, {fmt.Sprintf("%033d", 0), false}, {"Ada", false}, {".ada", false}, {"-ada", false}, {"ad a", false}, {"adé", false},
	} {
		if err := CheckUser(tc.user); (err == nil) != tc.ok {
			t.Errorf("CheckUser(%q) = %v, want ok=%v", tc.user, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		display string
		ok      bool
	}{
		{"Ada Lovelace", true}, {"日本語", true}, {string(bytes.Repeat([]byte("é"), 64)), true},
		{"", false}, {" Ada", false}, {"Ada ", false}, {string(bytes.Repeat([]byte("é"), 65)), false}, {"a\nb", false}, {"a\u202eb", false}, {"\xff", false},
	} {
		if err := CheckDisplay(tc.display); (err == nil) != tc.ok {
			t.Errorf("CheckDisplay(%q) = %v, want ok=%v", tc.display, err, tc.ok)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	k := b64.EncodeToString(make([]byte, 32))
	f.Add([]byte(`{"step":"share","v":"`+k+`"}`), "share")
	f.Add([]byte(`{"step":"confirm","v":"`+k+`"}`), "confirm")
	f.Add([]byte(`{"step":"id","key":"`+k+`","user":"ada","display":"Ada","mac":"`+k+`"}`), "id")
	f.Add([]byte(`{"step":"id","step":"share","v":"`+k+`"}`), "share")
	f.Add([]byte(`{"step":"share","v":"`+k+`","user":"x"}`), "share")
	f.Fuzz(func(t *testing.T, data []byte, want string) {
		p, err := parseMessage(data, want)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if p.step != want {
			t.Fatalf("parsed step %q, want %q", p.step, want)
		}
		switch p.step {
		case stepShare, stepConfirm:
			if len(p.v) != 32 {
				t.Fatalf("value of %d bytes", len(p.v))
			}
		case stepID:
			if p.id.check() != nil || len(p.mac) != macSize {
				t.Fatalf("unchecked identity %+v", p.id)
			}
		default:
			t.Fatalf("unknown step %q accepted", p.step)
		}
	})
}
