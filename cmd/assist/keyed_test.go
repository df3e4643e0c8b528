package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/session"
	"github.com/assist-project/assist/transport"
)

// newSID draws a session id as the messenger's server does.
func newSID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return "r-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// newSecret draws a password shaped like pairing.SessionSecret's.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestKeyedSessionCheck(t *testing.T) {
	good := keyedSession{Server: "https://127.0.0.1:1", SID: "r-" + strings.Repeat("a2", 13), Password: "x", Peer: "P",
		Expires: time.Now().Add(time.Minute)}
	if err := good.check(); err != nil {
		t.Fatalf("a good session: %v", err)
	}
	for name, tweak := range map[string]func(*keyedSession){
		"no server":       func(k *keyedSession) { k.Server = "" },
		"no password":     func(k *keyedSession) { k.Password = "" },
		"expired":         func(k *keyedSession) { k.Expires = time.Now().Add(-time.Second) },
		"short SID":       func(k *keyedSession) { k.SID = "r-abc" },
		"no prefix":       func(k *keyedSession) { k.SID = strings.Repeat("a", 28) },
		"upper case":      func(k *keyedSession) { k.SID = "r-" + strings.Repeat("A", 26) },
		"not base32":      func(k *keyedSession) { k.SID = "r-" + strings.Repeat("1", 26) },
		"a short code id": func(k *keyedSession) { k.SID = "1234" },
	} {
		k := good
		tweak(&k)
		if err := k.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// lineBuf is a stdout that a test can wait on, line by line.
type lineBuf struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
	next  int
	more  chan struct{}
}

func newLineBuf() *lineBuf { return &lineBuf{more: make(chan struct{})} }

func (b *lineBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	for {
		line, err := b.buf.ReadString('\n')
		if err != nil {
			b.buf.WriteString(line) // an unfinished line waits for its end
			break
		}
		b.lines = append(b.lines, strings.TrimRight(line, "\r\n"))
	}
	close(b.more)
	b.more = make(chan struct{})
	return len(p), nil
}

// wait returns the submatches of the first line after the last one wait
// matched that matches pattern.
func (b *lineBuf) wait(t *testing.T, what, pattern string) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.After(lineTimeout)
	for {
		b.mu.Lock()
		for i := b.next; i < len(b.lines); i++ {
			if m := re.FindStringSubmatch(b.lines[i]); m != nil {
				b.next = i + 1
				b.mu.Unlock()
				return m
			}
		}
		more := b.more
		all := strings.Join(b.lines, "\n")
		b.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("%s: no line matching %q after %v; stdout:\n%s", what, pattern, lineTimeout, all)
		}
	}
}

func (b *lineBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// keyedSide is one side of a keyed session running in the test.
type keyedSide struct {
	stop context.CancelFunc
	done chan struct{} // closed when it returned err
	err  error
}

// runSide runs f in the test until it returns or the test ends.
func runSide(t *testing.T, f func(ctx context.Context) error) *keyedSide {
	ctx, stop := context.WithCancel(context.Background())
	s := &keyedSide{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = f(ctx)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-s.done:
		case <-time.After(lineTimeout):
			t.Error("a side of the keyed session did not stop")
		}
	})
	return s
}

// wait waits for the side to return by itself, and returns its error.
func (s *keyedSide) wait(t *testing.T, what string, out fmt.Stringer) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(lineTimeout):
		t.Fatalf("%s's side goes on; stdout:\n%s", what, out)
		return nil
	}
}

// TestKeyedSession: the two functions assist ask/offer and assist requests
// call after an accepted request meet through a real assist serve with
// nothing but the session id and the derived secret: no code, no file. The
// expert's side joins before the novice's side has registered (both learn
// the id at once) and waits for it; the expert sees the novice's desktop
// pixel-exactly; the novice's terminal names the contact, not what the
// expert's side sends; the novice's side ends with its session. A wrong
// secret is refused and costs one attempt; the secrets reach no log line.
func TestKeyedSession(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	srv := startServe(t, t.TempDir())
	// Both sides log to the default logger, as in the binary.
	logs := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	novOpts := noviceOptions{Name: "Nora Novice", Allow: "view", Display: d.Display,
		AnswerTimeout: session.DefaultAnswerTimeout, DenyCooldown: transport.DefaultDenyCooldown, NoPage: true}
	expOpts := expertOptions{RFB: "127.0.0.1:0", NoBrowser: true, Name: "sent by the expert's side"}
	keyed := func(password, peer string, sid string) keyedSession {
		return keyedSession{Server: srv.URL, Fingerprint: srv.Fingerprint, SID: sid, Password: password,
			Peer: peer, Expires: time.Now().Add(5 * time.Minute)}
	}

	t.Run("accepted", func(t *testing.T) {
		sid, secret := newSID(t), newSecret()
		expOut, novOut := newLineBuf(), newLineBuf()
		// The expert's side first: it must wait for the registration.
		expert := runSide(t, func(ctx context.Context) error {
			return runKeyedExpert(ctx, expOut, keyed(secret, "Nora Novice", sid), expOpts)
		})
		novice := runSide(t, func(ctx context.Context) error {
			return runKeyedNovice(ctx, devnull, novOut, keyed(secret, "Eddie Expert", sid), novOpts)
		})
		expOut.wait(t, "expert", `^connected to Nora Novice via the rendezvous server \(\S+\)$`)
		expOut.wait(t, "expert", `^path: \S+$`)
		rfbAddr := expOut.wait(t, "expert", `^rfb on (\S+)$`)[1]
		expOut.wait(t, "expert", `^browser viewer: http://127\.0\.0\.1:\d+/`)
		expOut.wait(t, "expert", `^state: viewing`)
		novOut.wait(t, "novice", `^Eddie Expert connected from \S+ through the Assist server$`)
		lab.WaitMatch(t, d.X, lab.DialRFB(t, rfbAddr).Screen, 0, matchTimeout)
		if strings.Contains(novOut.String(), "code:") || strings.Contains(novOut.String(), "password:") {
			t.Errorf("the novice's side printed a code or a password:\n%s", novOut)
		}
		// The expert leaves: the novice's side is done too.
		expert.stop()
		if err := expert.wait(t, "the expert", expOut); err != nil {
			t.Errorf("expert's side: %v", err)
		}
		if err := novice.wait(t, "the novice", novOut); err != nil {
			t.Errorf("novice's side: %v", err)
		}
		for _, secretText := range []string{secret, sid} {
			if strings.Contains(srv.stderr.String(), secretText) || strings.Contains(logs.String(), secretText) {
				t.Errorf("a secret of the session reached a log line")
			}
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		sid := newSID(t)
		novOut := newLineBuf()
		novice := runSide(t, func(ctx context.Context) error {
			return runKeyedNovice(ctx, devnull, novOut, keyed(newSecret(), "Eddie Expert", sid), novOpts)
		})
		novOut.wait(t, "novice", `^waiting for your helper`)
		err := runKeyedExpert(context.Background(), newLineBuf(), keyed(newSecret(), "Nora Novice", sid), expOpts)
		if err == nil || !strings.Contains(err.Error(), "wrong password") {
			t.Errorf("expert's side with another secret: %v, want a wrong password", err)
		}
		novice.stop()
		if err := novice.wait(t, "the novice", novOut); err != nil {
			t.Errorf("novice's side: %v", err)
		}
		if strings.Contains(novOut.String(), "connected from") {
			t.Errorf("an expert with another secret got in:\n%s", novOut)
		}
	})
}

// FuzzValidSID: the session id comes from the server; validSID accepts
// only the messenger's shape, which is also a valid signalling id.
func FuzzValidSID(f *testing.F) {
	f.Add("r-abcdefghijklmnopqrstuvwxyz")
	f.Add("r-" + strings.Repeat("7", 26))
	f.Add("r-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	f.Add("1234")
	f.Add("r-" + strings.Repeat("a", 27))
	f.Fuzz(func(t *testing.T, sid string) {
		if !validSID(sid) {
			return
		}
		if len(sid) != 28 || !strings.HasPrefix(sid, server.MessengerIDPrefix) || server.ValidateID(sid) != nil {
			t.Fatalf("validSID accepted %q", sid)
		}
		if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(sid[2:])); err != nil {
			t.Fatalf("validSID accepted %q, not base32: %v", sid, err)
		}
	})
}

// waitLog waits until logs holds sub n times.
func waitLog(t *testing.T, logs *syncBuffer, sub string, n int) {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for strings.Count(logs.String(), sub) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q does not appear %d times in the log:\n%s", sub, n, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeyedSessionResume: a keyed session outlives its request's expiry
// and a restart of the server: the novice's device registers the session
// id again (its registration outlasts the expiry by which the expert had to
// connect), the expert's device joins again and proves it is the running
// session's expert, and the same viewer goes on seeing the desktop.
func TestKeyedSessionResume(t *testing.T) {
	e2e(t)
	d := newDesktop(t)
	data := t.TempDir()
	srv := startServe(t, data)
	logs := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() { slog.SetDefault(old) })
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })

	sid, secret := newSID(t), newSecret()
	expires := time.Now().Add(3 * time.Second)
	keyed := func(peer string) keyedSession {
		return keyedSession{Server: srv.URL, Fingerprint: srv.Fingerprint, SID: sid, Password: secret, Peer: peer, Expires: expires}
	}
	expOut, novOut := newLineBuf(), newLineBuf()
	runSide(t, func(ctx context.Context) error {
		return runKeyedNovice(ctx, devnull, novOut, keyed("Eddie Expert"), noviceOptions{Name: "Nora Novice", Allow: "view",
			Display: d.Display, AnswerTimeout: session.DefaultAnswerTimeout, DenyCooldown: transport.DefaultDenyCooldown, NoPage: true})
	})
	runSide(t, func(ctx context.Context) error {
		return runKeyedExpert(ctx, expOut, keyed("Nora Novice"), expertOptions{RFB: "127.0.0.1:0", NoBrowser: true, Name: "e"})
	})
	rfbAddr := expOut.wait(t, "expert", `^rfb on (\S+)$`)[1]
	expOut.wait(t, "expert", `^state: viewing`)
	c := lab.DialRFB(t, rfbAddr)
	lab.WaitMatch(t, d.X, c.Screen, 0, matchTimeout)

	// Past the request's expiry, the server restarts where it was.
	time.Sleep(time.Until(expires) + 100*time.Millisecond) // no event marks a deadline passing
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
	srv2 := startServe(t, data, "--listen", u.Host)
	if srv2.URL != srv.URL {
		t.Fatalf("assist serve came back at %s, want %s", srv2.URL, srv.URL)
	}
	waitLog(t, logs, "rendezvous server: registered again", 1)
	waitLog(t, logs, "rendezvous: the expert is back", 1)
	waitLog(t, logs, "rendezvous: paired with the novice again", 1)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, c.Screen, 0, matchTimeout)
	if sid := sidPattern.FindString(logs.String() + srv.stderr.String() + srv2.stderr.String()); sid != "" {
		t.Errorf("the session id %s reached a log line", sid)
	}
}
