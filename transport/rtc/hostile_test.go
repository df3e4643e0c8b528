package rtc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/pake"
)

func TestWrongPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	es, ns := sigPair()
	ecfg := testConfig(t)
	ecfg.Password = "not-the-password"
	e, n := connectPair(t, ctx, es, ns, ecfg, testConfig(t))
	if !errors.Is(e.err, ErrWrongPassword) {
		t.Errorf("Dial: %v, want ErrWrongPassword", e.err)
	}
	if !errors.Is(n.err, ErrWrongPassword) {
		t.Errorf("Accept: %v, want ErrWrongPassword", n.err)
	}
}

// TestWrongPasswordAttemptsLeft: over a real data channel, the expert's
// error says how many attempts the novice's count leaves, though the
// novice closes its connection right after telling.
func TestWrongPasswordAttemptsLeft(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	es, ns := sigPair()
	ecfg := testConfig(t)
	ecfg.Password = "not-the-password"
	ncfg := testConfig(t)
	ncfg.AttemptFailed = func() int { return 2 }
	e, n := connectPair(t, ctx, es, ns, ecfg, ncfg)
	if !errors.Is(e.err, ErrWrongPassword) || !errors.Is(n.err, ErrWrongPassword) {
		t.Fatalf("Dial: %v, Accept: %v; want ErrWrongPassword", e.err, n.err)
	}
	if !strings.Contains(e.err.Error(), "(2 attempts left)") {
		t.Errorf("Dial: %v; want it to say 2 attempts left", e.err)
	}
}

func TestUnknownInvitation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	es, ns := sigPair()
	ecfg := testConfig(t)
	ecfg.InvitationID = "inv-other"
	e, n := connectPair(t, ctx, es, ns, ecfg, testConfig(t))
	if !errors.Is(e.err, ErrUnknownInvitation) {
		t.Errorf("Dial: %v, want ErrUnknownInvitation", e.err)
	}
	if !errors.Is(n.err, ErrUnknownInvitation) || errors.Is(n.err, ErrWrongPassword) {
		t.Errorf("Accept: %v, want ErrUnknownInvitation (not a counted attempt)", n.err)
	}
}

// mitm is a hostile rendezvous server that does what the signalling path
// makes possible: it answers the expert's offer with a PeerConnection of its
// own, offers the novice another one, and relays the data channel's bytes
// between the two. Both DTLS sessions terminate at the mitm, so it sees and
// may alter every byte of the handshake: it is the strongest attack the
// signalling position allows without the password.
func mitm(t *testing.T, ctx context.Context, toExpert, toNovice Signaler, bind []byte) {
	t.Helper()
	cfg := testConfig(t)
	cfg.bindOverride = bind
	var (
		wg               sync.WaitGroup
		fakeNov, fakeExp *Conn
		errN, errE       error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		fakeNov, _, _, errN = openAndStop(ctx, toExpert, &cfg, false)
	}()
	go func() {
		defer wg.Done()
		fakeExp, _, _, errE = openAndStop(ctx, toNovice, &cfg, true)
	}()
	wg.Wait()
	if errN != nil || errE != nil {
		if fakeNov != nil {
			fakeNov.Close()
		}
		if fakeExp != nil {
			fakeExp.Close()
		}
		t.Errorf("mitm could not open its channels: %v / %v", errN, errE)
		return
	}
	// Relay until either side closes; closing both ends the other copy.
	var once sync.Once
	closeBoth := func() { once.Do(func() { fakeNov.Close(); fakeExp.Close() }) }
	var relay sync.WaitGroup
	relay.Add(2)
	go func() { defer relay.Done(); io.Copy(fakeExp, fakeNov); closeBoth() }()
	go func() { defer relay.Done(); io.Copy(fakeNov, fakeExp); closeBoth() }()
	t.Cleanup(func() { closeBoth(); relay.Wait() })
}

// TestMITMRelayFails is the key security test. A signalling server that
// puts itself in the middle with two PeerConnections of its own, and relays
// every byte of the PAKE faithfully, must not get a session: each honest end
// binds the PAKE to the DTLS certificates it actually saw (its own and the
// mitm's), the two Contexts differ, the key confirmations do not match, and
// both ends report ErrWrongPassword, although both know the right password.
func TestMITMRelayFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	expertSig, mitmToExpert := sigPair()
	noviceSig, mitmToNovice := sigPair()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); mitm(t, ctx, mitmToExpert, mitmToNovice, nil) }()
	e, n := connectPair(t, ctx, expertSig, noviceSig, testConfig(t), testConfig(t))
	wg.Wait()
	if e.err == nil || n.err == nil {
		t.Fatalf("the mitm got a session: Dial: %v, Accept: %v", e.err, n.err)
	}
	if !errors.Is(e.err, ErrWrongPassword) {
		t.Errorf("Dial: %v, want ErrWrongPassword", e.err)
	}
	if !errors.Is(n.err, ErrWrongPassword) {
		t.Errorf("Accept: %v, want ErrWrongPassword", n.err)
	}
}

// TestMITMRelayControl runs the same mitm with the channel binding replaced
// by a constant on every side: the relayed handshake then succeeds. So the
// relay is faithful, and what stops TestMITMRelayFails is the binding to the
// DTLS certificates and nothing else.
func TestMITMRelayControl(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	expertSig, mitmToExpert := sigPair()
	noviceSig, mitmToNovice := sigPair()
	bind := []byte("constant binding, for the control only")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); mitm(t, ctx, mitmToExpert, mitmToNovice, bind) }()
	ecfg, ncfg := testConfig(t), testConfig(t)
	ecfg.bindOverride, ncfg.bindOverride = bind, bind
	e, n := connectPair(t, ctx, expertSig, noviceSig, ecfg, ncfg)
	wg.Wait()
	if e.err != nil || n.err != nil {
		t.Fatalf("without binding the relayed handshake should succeed: Dial: %v, Accept: %v", e.err, n.err)
	}
	exchange(t, e.c, n.c, 64<<10)
}

var fingerprintRE = regexp.MustCompile(`a=fingerprint:sha-256 [0-9A-F:]+`)

// TestFingerprintRewriteFails: a server that rewrites the DTLS fingerprint
// in the SDP (to announce its own certificate) without terminating DTLS
// itself breaks the DTLS handshake: pion checks the certificate against the
// fingerprint it was given.
func TestFingerprintRewriteFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	es, ns := sigPair()
	fake := "a=fingerprint:sha-256 " + strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	rewrite := func(m []byte) []byte {
		return bytes.ReplaceAll(m, fingerprintRE.Find(m), []byte(fake))
	}
	rewriting := &funcSignaler{Signaler: es, send: func(m []byte) []byte {
		if fingerprintRE.Match(m) {
			return rewrite(m)
		}
		return m
	}}
	e, n := connectPair(t, ctx, rewriting, ns, testConfig(t), testConfig(t))
	if e.err == nil || n.err == nil {
		t.Fatalf("connected despite a rewritten fingerprint: Dial: %v, Accept: %v", e.err, n.err)
	}
	t.Logf("Dial: %v\nAccept: %v", e.err, n.err)
}

func TestMalformedSignalling(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		{"not json", []byte("hello")},
		{"empty", nil},
		{"oversized", bytes.Repeat([]byte(" "), MaxSignalMessage+1)},
		{"unknown type", []byte(`{"type":"bye"}`)},
		{"unknown field", []byte(`{"type":"end-of-candidates","x":1}`)},
		{"trailing", []byte(`{"type":"end-of-candidates"}{}`)},
		{"answer to the novice", []byte(`{"type":"answer","sdp":"v=0\r\n"}`)},
		{"bad sdp", []byte(`{"type":"offer","sdp":"v=0\r\nnonsense"}`)},
		{"bad candidate", []byte(`{"type":"candidate","candidate":"candidate:garbage","sdpMid":"0"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, ns := sigPair()
			in := make(chan []byte, 2)
			in <- tt.msg
			if tt.name == "bad candidate" {
				// A candidate is checked once there is an offer to add it to.
				in <- nil
			}
			ns.in = in
			_, err := Accept(ctx, ns, testConfig(t))
			if tt.name == "bad candidate" {
				if err == nil {
					t.Fatal("Accept succeeded")
				}
				return
			}
			if !errors.Is(err, ErrSignalling) {
				t.Fatalf("Accept: %v, want ErrSignalling", err)
			}
		})
	}
}

// TestTooManyCandidates: a server that floods candidates is cut off.
func TestTooManyCandidates(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, ns := sigPair()
	in := make(chan []byte, maxRemoteCandidates+1)
	for range maxRemoteCandidates + 1 {
		in <- []byte(`{"type":"candidate","candidate":"candidate:1 1 udp 2130706431 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}`)
	}
	ns.in = in
	_, err := Accept(ctx, ns, testConfig(t))
	if !errors.Is(err, ErrSignalling) {
		t.Fatalf("Accept: %v, want ErrSignalling", err)
	}
}

// TestPeerNeverAnswers: the novice never shows up; Dial ends with ctx.
func TestPeerNeverAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	es, _ := sigPair()
	_, err := Dial(ctx, es, testConfig(t))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial: %v, want ErrUnreachable and context.DeadlineExceeded", err)
	}
}

// TestPeerVanishesMidHandshake: the data channel opens, then the novice
// disappears without a word. Dial fails at once (the channel closes) or at
// its deadline, and leaks nothing (goleak, in TestMain).
func TestPeerVanishesMidHandshake(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	es, ns := sigPair()
	cfg := testConfig(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, _, _, err := openAndStop(ctx, ns, &cfg, false)
		if err != nil {
			t.Errorf("open: %v", err)
			return
		}
		// Read the hello, then vanish.
		buf := make([]byte, 8)
		c.Read(buf)
		c.Close()
	}()
	_, err := Dial(ctx, es, testConfig(t))
	<-done
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("Dial: %v, want ErrUnreachable", err)
	}
}

// fakeExpert opens a data channel to Accept as an expert would, then lets
// script speak the handshake by hand.
func fakeExpert(t *testing.T, script func(c *Conn)) error {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	es, ns := sigPair()
	cfg := testConfig(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, _, _, err := openAndStop(ctx, es, &cfg, true)
		if err != nil {
			t.Errorf("open: %v", err)
			return
		}
		defer c.Close()
		script(c)
		c.flush(ctx, flushTimeout)
	}()
	_, err := Accept(ctx, ns, testConfig(t))
	<-done
	return err
}

// TestNoviceMalformedShare: a malformed share is a protocol error, and costs
// no attempt (the peer has not seen the novice's confirmation).
func TestNoviceMalformedShare(t *testing.T) {
	err := fakeExpert(t, func(c *Conn) {
		hb, _ := hello{Version: ProtocolVersion, InvitationID: testID, Name: "mallory"}.Marshal()
		writeFrame(t, c, kindHello, hb)
		readFrame(t, c) // the novice's share
		writeFrame(t, c, kindShare, bytes.Repeat([]byte{0}, 31))
	})
	if !errors.Is(err, ErrNotAssist) || errors.Is(err, ErrWrongPassword) {
		t.Errorf("Accept: %v, want ErrNotAssist and not ErrWrongPassword", err)
	}
}

// TestNoviceCountsAbandonedAttempt: an expert who leaves once it has the
// novice's key confirmation (all an offline guesser needs) costs the novice
// an attempt: Accept returns ErrWrongPassword.
func TestNoviceCountsAbandonedAttempt(t *testing.T) {
	err := fakeExpert(t, func(c *Conn) {
		hb, _ := hello{Version: ProtocolVersion, InvitationID: testID, Name: "mallory"}.Marshal()
		writeFrame(t, c, kindHello, hb)
		readFrame(t, c) // the novice's share
		ex, err := pake.New(pake.Config{Password: []byte("guess"), Context: []byte("x"), SessionID: []byte(testID), Role: pake.Initiator})
		if err != nil {
			t.Error(err)
			return
		}
		writeFrame(t, c, kindShare, ex.Message())
		readFrame(t, c) // the novice's confirmation: leave with it
	})
	if !errors.Is(err, ErrWrongPassword) {
		t.Errorf("Accept: %v, want ErrWrongPassword", err)
	}
}

// TestNoviceRefusesOtherVersion: a hello of another version is refused
// with a message the expert can show.
func TestNoviceRefusesOtherVersion(t *testing.T) {
	var kind byte
	var msg string
	err := fakeExpert(t, func(c *Conn) {
		writeFrame(t, c, kindHello, []byte{2, 0xff})
		var p []byte
		kind, p = readFrame(t, c)
		if len(p) > 0 {
			msg = string(p[1:])
		}
	})
	if !errors.Is(err, ErrVersion) {
		t.Errorf("Accept: %v, want ErrVersion", err)
	}
	if kind != kindRefusal || msg == "" {
		t.Errorf("the novice answered kind 0x%02x %q, want a refusal with a message", kind, msg)
	}
}

// TestStalledExpertDropped: a peer that sets up ICE, DTLS and the data
// channel and then sends nothing, or only its hello, is dropped after
// AuthTimeout, long before the setup's own deadline, and the attempt is not
// one the novice must count (the PAKE never ran).
func TestStalledExpertDropped(t *testing.T) {
	for _, tt := range []struct {
		name  string
		hello bool
	}{{"silent", false}, {"hello only", true}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			es, ns := sigPair()
			type opened struct {
				c   *Conn
				err error
			}
			peer := make(chan opened, 1)
			go func() {
				cfg := testConfig(t)
				c, _, _, err := openAndStop(ctx, es, &cfg, true)
				peer <- opened{c, err}
			}()
			ncfg := testConfig(t)
			ncfg.AuthTimeout = 300 * time.Millisecond
			accepted := make(chan result, 1)
			go func() {
				c, err := Accept(ctx, ns, ncfg)
				accepted <- result{c, err}
			}()
			p := <-peer
			if p.err != nil {
				t.Fatalf("hostile peer: %v", p.err)
			}
			defer p.c.Close()
			if tt.hello {
				hb, err := hello{Version: ProtocolVersion, InvitationID: testID, Name: testName}.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if err := pake.WriteMessage(p.c, kindHello, hb); err != nil {
					t.Fatal(err)
				}
			}
			r := <-accepted
			if r.c != nil {
				r.c.Close()
				t.Fatal("a silent peer was accepted")
			}
			if ctx.Err() != nil {
				t.Fatalf("Accept returned only when the test's deadline passed: %v", r.err)
			}
			if errors.Is(r.err, ErrWrongPassword) {
				t.Errorf("Accept: %v: a PAKE that never ran must not count as an attempt", r.err)
			}
			if !errors.Is(r.err, ErrUnreachable) {
				t.Errorf("Accept: %v, want ErrUnreachable", r.err)
			}
		})
	}
}

// TestUnconnectedExpertDropped: an expert who pairs and never sends an
// offer (or one that never connects) is dropped after OpenTimeout, not
// at the end of the whole setup's time, and costs no attempt.
func TestUnconnectedExpertDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, ns := sigPair() // the expert's end sends nothing
	ncfg := testConfig(t)
	ncfg.OpenTimeout = 300 * time.Millisecond
	ncfg.OfferTimeout = time.Minute // OpenTimeout alone
	c, err := Accept(ctx, ns, ncfg)
	if c != nil {
		c.Close()
		t.Fatal("an expert who never connected was accepted")
	}
	if ctx.Err() != nil {
		t.Fatalf("Accept returned only when the test's deadline passed: %v", err)
	}
	if errors.Is(err, ErrWrongPassword) {
		t.Errorf("Accept: %v: a PAKE that never ran must not count as an attempt", err)
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("Accept: %v, want ErrUnreachable", err)
	}
}

// TestNoOfferDropped: an expert who pairs and sends candidates but no
// offer (or nothing) is dropped after OfferTimeout, well before
// OpenTimeout, and costs no attempt.
func TestNoOfferDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	es, ns := sigPair()
	end, err := signal{Type: typeEnd}.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := es.Send(ctx, end); err != nil {
		t.Fatal(err)
	}
	ncfg := testConfig(t)
	ncfg.OfferTimeout = 300 * time.Millisecond
	start := time.Now()
	c, err := Accept(ctx, ns, ncfg)
	if c != nil {
		c.Close()
		t.Fatal("an expert who sent no offer was accepted")
	}
	if time.Since(start) >= DefaultOpenTimeout {
		t.Fatalf("Accept returned after %v: the offer deadline did not apply (%v)", time.Since(start), err)
	}
	if errors.Is(err, ErrWrongPassword) {
		t.Errorf("Accept: %v: a PAKE that never ran must not count as an attempt", err)
	}
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no offer") {
		t.Errorf("Accept: %v, want ErrUnreachable saying no offer came", err)
	}
}
