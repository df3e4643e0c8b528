package relay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/invitation"
	"github.com/assist-project/assist/mailer"
	"github.com/assist-project/assist/mailer/relay"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a TLS server running the relay in front of a real SMTP
// server (mailpit), with one known device.
type fixture struct {
	ts   *httptest.Server
	mail *lab.Mailpit
	key  ed25519.PrivateKey
	fp   [32]byte
	pin  string
}

func newFixture(t *testing.T, burst int) *fixture {
	t.Helper()
	f := &fixture{mail: lab.StartMailpit(t, lab.MailpitOptions{})}
	_, f.key, _ = ed25519.GenerateKey(rand.Reader)
	known := string(f.key.Public().(ed25519.PublicKey))
	host, port := lab.HostPort(t, f.mail.SMTP)
	f.ts = httptest.NewUnstartedServer(nil)
	f.ts.StartTLS()
	t.Cleanup(f.ts.Close)
	f.fp = sha256.Sum256(f.ts.Certificate().Raw)
	f.pin = "sha256:" + hex.EncodeToString(f.fp[:])
	rl, err := relay.New(relay.Config{
		SMTP: &mailer.SMTP{Host: host, Port: port, Security: mailer.Plain, From: "help@assist.example", Timeout: 10 * time.Second},
		Devices: func(_ context.Context, key []byte) (string, error) {
			if string(key) == known {
				return "grandma", nil
			}
			return "", errors.New("not found")
		},
		Fingerprint: f.fp, Burst: burst, PerHour: 1, AddressBurst: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(relay.Path, rl)
	f.ts.Config.Handler = mux
	return f
}

func (f *fixture) invitation(t *testing.T, server string) *invitation.Invitation {
	t.Helper()
	inv, err := invitation.New("Grandma", time.Hour, []string{"192.0.2.7:5820"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inv.Server = server
	return inv
}

func marshal(t *testing.T, inv *invitation.Invitation) []byte {
	t.Helper()
	b, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends a hand-made request and returns the status and answer.
func (f *fixture) post(t *testing.T, req relay.Request) (int, relay.Answer) {
	t.Helper()
	body, _ := json.Marshal(req)
	resp, err := f.ts.Client().Post(f.ts.URL+relay.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a relay.Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a
}

func (f *fixture) signed(key ed25519.PrivateKey, fp [32]byte, when time.Time, to string, file []byte) relay.Request {
	b64 := base64.RawURLEncoding
	return relay.Request{Key: b64.EncodeToString(key.Public().(ed25519.PublicKey)), Time: when.Unix(), To: to,
		Invitation: b64.EncodeToString(file), Sig: b64.EncodeToString(ed25519.Sign(key, relay.SignedBytes(fp, when.Unix(), to, file)))}
}

// TestRelaySend: a logged-in device asks the server to mail its
// invitation; the mail arrives at a real SMTP server with the invitation
// attached and the novice's name on the From line.
func TestRelaySend(t *testing.T) {
	f := newFixture(t, 5)
	inv := f.invitation(t, f.ts.URL)
	if err := relay.Send(context.Background(), f.ts.URL, f.pin, f.key, "bob@example.com", marshal(t, inv)); err != nil {
		t.Fatal(err)
	}
	m := lab.ParseMail(t, f.mail.WaitMessage(t, 10*time.Second))
	if from := m.Header.Get("From"); !strings.Contains(from, "help@assist.example") || !strings.Contains(from, "Grandma (via Assist)") {
		t.Errorf("From: %q", from)
	}
	att := m.Attachments["Invitation from Grandma.assist"]
	if back, err := invitation.Parse(att); err != nil || back.ID != inv.ID {
		t.Fatalf("attachment: %v", err)
	}
	if !strings.Contains(m.Text, inv.URL()) || !strings.Contains(m.Text, f.ts.URL+"/") {
		t.Errorf("text:\n%s", m.Text)
	}
}

// TestRelayRefuses: everything but a fresh request from a known device,
// signed for this server, about this server's unexpired invitation, is
// refused, and nothing is sent.
func TestRelayRefuses(t *testing.T) {
	f := newFixture(t, 3)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	file := marshal(t, f.invitation(t, f.ts.URL))
	now := time.Now()

	replayed := f.signed(f.key, f.fp, now, "bob@example.com", file)
	replayed.To = "bob@example.com"
	for _, tt := range []struct {
		name   string
		req    relay.Request
		status int
		words  string
	}{
		{"unknown device", f.signed(stranger, f.fp, now, "bob@example.com", file), 401, "assist login"},
		{"signed for another server", f.signed(f.key, [32]byte{1}, now, "bob@example.com", file), 401, "signature"},
		{"old request", f.signed(f.key, f.fp, now.Add(-10*time.Minute), "bob@example.com", file), 401, "clock"},
		{"recipient changed", func() relay.Request {
			r := f.signed(f.key, f.fp, now, "bob@example.com", file)
			r.To = "eve@example.com"
			return r
		}(), 401, "signature"},
		{"another server's invitation", f.signed(f.key, f.fp, now, "bob@example.com", marshal(t, f.invitation(t, "https://evil.example"))), 400, "not for this server"},
		{"not an invitation", f.signed(f.key, f.fp, now, "bob@example.com", []byte(`{"x":1}`)), 400, "damaged"},
		{"bad key", relay.Request{Key: "x", Sig: "y", Invitation: "z"}, 400, "key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, a := f.post(t, tt.req)
			if status != tt.status || !strings.Contains(a.Message, tt.words) || a.Sent {
				t.Errorf("got %d %+v, want %d with %q", status, a, tt.status, tt.words)
			}
		})
	}
	t.Run("replay", func(t *testing.T) {
		// The account's burst is 3; "another server's invitation" and "not
		// an invitation" spent two.
		if status, a := f.post(t, replayed); status != 200 || !a.Sent {
			t.Fatalf("first: %d %+v", status, a)
		}
		if status, a := f.post(t, replayed); status != http.StatusConflict {
			t.Errorf("replay: %d %+v", status, a)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		status, a := f.post(t, f.signed(f.key, f.fp, time.Now(), "carol@example.com", file))
		if status != http.StatusTooManyRequests || !strings.Contains(a.Message, "too many e-mails") {
			t.Errorf("past the burst: %d %+v", status, a)
		}
	})
	if n := len(f.mail.Messages(t)); n != 1 {
		t.Errorf("%d messages sent, want the one accepted", n)
	}
}

// TestRelayClient checks the client's own refusals and words.
func TestRelayClient(t *testing.T) {
	f := newFixture(t, 5)
	file := marshal(t, f.invitation(t, f.ts.URL))
	ctx := context.Background()
	wrongPin := "sha256:" + strings.Repeat("ab", 32)
	if err := relay.Send(ctx, f.ts.URL, wrongPin, f.key, "bob@example.com", file); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("wrong pin: %v", err)
	}
	// No pin: the system's authorities do not know the test certificate.
	if err := relay.Send(ctx, f.ts.URL, "", f.key, "bob@example.com", file); err == nil {
		t.Error("an unknown certificate was accepted without a pin")
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	if err := relay.Send(ctx, f.ts.URL, f.pin, stranger, "bob@example.com", file); err == nil || !strings.Contains(err.Error(), "assist login") {
		t.Errorf("unknown device: %v", err)
	}
	plain := httptest.NewTLSServer(http.NotFoundHandler())
	defer plain.Close()
	fp := sha256.Sum256(plain.Certificate().Raw)
	if err := relay.Send(ctx, plain.URL, "sha256:"+hex.EncodeToString(fp[:]), f.key, "bob@example.com", file); err == nil || !strings.Contains(err.Error(), "does not send e-mail") {
		t.Errorf("server without relay: %v", err)
	}
	if n := len(f.mail.Messages(t)); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}
