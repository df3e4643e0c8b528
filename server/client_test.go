package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	ts := startServer(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := DialSignal(ctx, ts.URL, "sha256:00"); err == nil {
		t.Error("dialled with a wrong pin")
	}
	novice, err := DialSignal(ctx, ts.URL, ts.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	defer novice.Close()
	expert, err := DialSignal(ctx, ts.URL, ts.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	defer expert.Close()

	var se *SignalError
	if _, err := expert.Join(ctx, "7-crayon"); !errors.As(err, &se) || se.Code != CodeUnknown {
		t.Fatalf("join before register: %v, want %q", err, CodeUnknown)
	}
	if err := novice.Register(ctx, "7-crayon", ts.Clock.Now().Add(time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	// Both ends on one address: STUN only. Only the novice learns where
	// the expert is.
	p, err := expert.Join(ctx, "7-crayon")
	if err != nil || p.Session == "" || len(p.ICE) != 1 || p.ICE[0].Username != "" || p.From.IsValid() {
		t.Fatalf("join: %+v, %v", p, err)
	}
	if m, err := novice.Recv(ctx); err != nil || m.Type != TypePaired || m.Session != p.Session || m.From.String() != "127.0.0.1" {
		t.Fatalf("novice: %+v, %v", m, err)
	}
	if err := novice.Relay(ctx, json.RawMessage(`{"pake":"AQID"}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := expert.Recv(ctx); err != nil || m.Type != TypeRelay || string(m.Data) != `{"pake":"AQID"}` {
		t.Fatalf("expert: %+v, %v", m, err)
	}
	if err := expert.Bye(ctx, ReasonAuthFailed); err != nil {
		t.Fatal(err)
	}
	if m, err := novice.Recv(ctx); err != nil || m.Type != TypeBye || m.Reason != ReasonAuthFailed {
		t.Fatalf("novice: %+v, %v", m, err)
	}
}

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Message
		err  string // substring of the error; "" for success
	}{
		{in: `{"type":"registered","id":"7","expires":"2030-01-02T03:04:05Z"}`, want: Message{Type: TypeRegistered, ID: "7", Expires: "2030-01-02T03:04:05Z"}},
		{in: `{"type":"paired","session":"s","ice":[{"urls":["stun:h:1"]}]}`, want: Message{Type: TypePaired, Session: "s", ICE: []ICEServer{{URLs: []string{"stun:h:1"}}}}},
		{in: `{"type":"paired","session":"s","ice":[],"from":"192.0.2.7"}`, want: Message{Type: TypePaired, Session: "s", ICE: []ICEServer{}, From: netip.MustParseAddr("192.0.2.7")}},
		{in: `{"type":"paired","session":"s","ice":null,"from":"2001:db8::1"}`, want: Message{Type: TypePaired, Session: "s", From: netip.MustParseAddr("2001:db8::1")}},
		{in: `{"type":"queued"}`, want: Message{Type: TypeQueued}},
		{in: `{"type":"relay","data":{"a":1}}`, want: Message{Type: TypeRelay, Data: json.RawMessage(`{"a":1}`)}},
		{in: `{"type":"bye","reason":"done"}`, want: Message{Type: TypeBye, Reason: "done"}},
		{in: `{"type":"peer-left"}`, want: Message{Type: TypePeerLeft}},
		{in: `{"type":"error","code":"too-many","message":"try again in 6s"}`, want: Message{Type: TypeError, Code: CodeTooMany, Message: "try again in 6s"}},
		// Unknown members and types are the caller's to judge.
		{in: `{"type":"future","extra":[1]}`, want: Message{Type: "future"}},
		{in: `{"type":"paired","session":"s","from":""}`, err: "not an IP address"},
		{in: `{"type":"paired","session":"s","from":"192.0.2.7:80"}`, err: "not an IP address"},
		{in: `{"type":"paired","session":"s","from":"fe80::1%eth0"}`, err: "not an IP address"},
		{in: `{"type":"paired","session":"s","from":"example.org"}`, err: "not an IP address"},
		{in: `{"type":"paired","session":"s","from":7}`, err: "cannot unmarshal"},
		{in: `{"type":"relay","data":"x","from":"192.0.2.7"}`, err: `"from" in a "relay"`},
		{in: `{"type":7}`, err: "cannot unmarshal"},
		{in: `{"id":"7"}`, err: `no "type"`},
		{in: `{"type":null}`, err: `no "type"`},
		{in: `[]`, err: "cannot unmarshal"},
		{in: `{"type":"queued"} {}`, err: "invalid character"},
		{in: "{\"type\":\"bye\",\"reason\":\"\xff\"}", err: "UTF-8"},
		{in: `{"type":"paired","ice":[{"urls":"stun:h"}]}`, err: "cannot unmarshal"},
	} {
		m, err := ParseMessage([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrMalformedMessage) {
				t.Errorf("ParseMessage(%s) = %+v, %v; want an ErrMalformedMessage containing %q", tc.in, m, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(m, tc.want) {
			t.Errorf("ParseMessage(%s) = %+v, %v; want %+v", tc.in, m, err, tc.want)
		}
	}
}

// FuzzParseMessage: whatever the server sends, ParseMessage returns a
// message or an ErrMalformedMessage, never panics, and what it accepts
// survives a round trip through Send's encoding.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"registered","id":"7-crayon","expires":"2030-01-02T03:04:05Z"}`,
		`{"type":"paired","session":"abc","ice":[{"urls":["stun:h:3478"]},{"urls":["turn:h:3478?transport=udp"],"username":"1:abc","credential":"c2VjcmV0"}]}`,
		`{"type":"paired","session":"abc","ice":[],"from":"192.0.2.7"}`,
		`{"type":"paired","session":"abc","ice":null,"from":"2001:db8::1"}`,
		`{"type":"queued"}`,
		`{"type":"relay","data":"AAEC"}`,
		`{"type":"relay","data":{"sdp":"v=0"}}`,
		`{"type":"bye","reason":"timeout: the expert sent nothing"}`,
		`{"type":"peer-left"}`,
		`{"type":"error","code":"unknown","message":"no invitation is waiting under this number"}`,
		`{"type":"error","code":"too-many","message":"try again in 6s"}`,
		`{"type":"paired","from":"::ffff:1.2.3.4"}`,
		`{"type":"x","from":"1.2.3.4"}`,
		`{"type":"bye","reason":"\u001b[2J"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error %v does not wrap ErrMalformedMessage", err)
			}
			return
		}
		if m.From.IsValid() && (m.Type != TypePaired || m.From.Zone() != "") {
			t.Fatalf("accepted from %v in %q", m.From, m.Type)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", m, err)
		}
		m2, err := ParseMessage(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		if m2.Type != m.Type || m2.From != m.From || m2.Session != m.Session || m2.Code != m.Code {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}
