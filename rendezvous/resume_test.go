package rendezvous

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/transport/rtc"
)

func TestResumeProof(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	msg := func(data string) server.Message {
		return server.Message{Type: server.TypeRelay, Data: json.RawMessage(data)}
	}
	proof := resumeProof(key, "session-1")
	good, _ := json.Marshal(resumeMessage{Resume: base64.StdEncoding.EncodeToString(proof)})
	for _, tc := range []struct {
		name string
		m    server.Message
		ok   bool
	}{
		{"resume", msg(string(good)), true},
		{"rtc message", msg(`"eyJ0eXBlIjoib2ZmZXIifQ=="`), false},
		{"unknown member", msg(`{"resume":"` + base64.StdEncoding.EncodeToString(proof) + `","x":1}`), false},
		{"short proof", msg(`{"resume":"AAAA"}`), false},
		{"not base64", msg(`{"resume":"%%%"}`), false},
		{"empty", msg(`{}`), false},
		{"not a relay", server.Message{Type: server.TypeBye, Data: good}, false},
	} {
		p, ok := parseResume(tc.m)
		if ok != tc.ok || ok && !bytes.Equal(p, proof) {
			t.Errorf("%s: parseResume = %x, %v; want ok %v", tc.name, p, ok, tc.ok)
		}
	}
	if bytes.Equal(resumeProof(key, "session-2"), proof) {
		t.Error("a proof is valid for another pairing")
	}
}

func FuzzParseResume(f *testing.F) {
	f.Add([]byte(`{"resume":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`))
	f.Add([]byte(`"eyJ0eXBlIjoib2ZmZXIifQ=="`))
	f.Add([]byte(`{"resume":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := parseResume(server.Message{Type: server.TypeRelay, Data: data})
		if ok && len(p) != 32 {
			t.Fatalf("accepted a proof of %d bytes", len(p))
		}
	})
}

func TestLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := newLink()
	l.push(server.Message{Type: server.TypeRelay, ID: "1"})
	l.push(server.Message{Type: server.TypeRelay, ID: "2"})
	m, err := l.next(ctx)
	if err != nil || m.ID != "1" {
		t.Fatalf("next = %v, %v", m, err)
	}
	l.unread(m)
	end := errors.New("ended")
	l.end(end)
	for _, want := range []string{"1", "2"} {
		if m, err := l.next(ctx); err != nil || m.ID != want {
			t.Fatalf("next = %v, %v; want %s", m, err, want)
		}
	}
	if _, err := l.next(ctx); err != end {
		t.Fatalf("next after the end: %v", err)
	}

	// A reader that does not keep up loses the pairing, not memory.
	l = newLink()
	for range maxLinkQueue + 1 {
		l.push(server.Message{Type: server.TypeRelay})
	}
	if _, err := l.next(ctx); !errors.Is(err, rtc.ErrSignalling) {
		t.Fatalf("next after an overflow: %v", err)
	}
}
