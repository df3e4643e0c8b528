package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestPairAndRelay(t *testing.T) {
	ts := startServer(t, "", nil)
	novice, expert, session := ts.pair(t, "7-crayon")

	// Data is opaque and forwarded byte for byte, whatever its shape.
	for _, data := range []string{
		`{"pake":"AQID","n":1}`,
		`"c2RwIG9mZmVy"`,
		`[1, 2.50, {"x" : null}]`,
		`"\u00e9\ud83d\ude00 \"quoted\""`,
		`12345678901234567890`,
	} {
		expert.sendRaw(`{"type":"relay","data":` + data + `}`)
		if got, err := novice.recvRaw(); err != nil || string(got) != `{"type":"relay","data":`+data+`}` {
			t.Fatalf("novice got %s (%v), want data %s verbatim", got, err, data)
		}
		novice.sendRaw(`{"data":` + data + `,"type":"relay"}`)
		if got, err := expert.recvRaw(); err != nil || string(got) != `{"type":"relay","data":`+data+`}` {
			t.Fatalf("expert got %s (%v), want data %s verbatim", got, err, data)
		}
	}

	// The session's ICE servers, with REST credentials.
	code, body := ts.get(t, "/v1/ice?session="+session)
	if code != 200 {
		t.Fatalf("/v1/ice: %d %s", code, body)
	}
	var ice iceResponse
	if err := json.Unmarshal([]byte(body), &ice); err != nil {
		t.Fatal(err)
	}
	if len(ice.ICE) != 2 || ice.ICE[0].URLs[0] != "stun:relay.test:3478" || ice.ICE[0].Username != "" ||
		!strings.HasSuffix(ice.ICE[1].Username, ":"+session) || ice.ICE[1].Credential == "" || ice.TTL != 3600 {
		t.Errorf("/v1/ice: %s", body)
	}
	_, cred := TURNCredentials(ts.TURNSecret(), session, time.Time{})
	name, cred2 := TURNCredentials(ts.TURNSecret(), session, parseExpiry(t, ice.ICE[1].Username))
	if name != ice.ICE[1].Username || cred2 != ice.ICE[1].Credential || cred == cred2 {
		t.Errorf("credentials %s/%s do not match the secret", ice.ICE[1].Username, ice.ICE[1].Credential)
	}
	if code, _ := ts.get(t, "/v1/ice?session=nope"); code != 404 {
		t.Errorf("/v1/ice for an unknown session: %d, want 404", code)
	}

	// Bye ends the pairing for both; the novice stays registered.
	expert.sendRaw(`{"type":"bye","reason":"done"}`)
	if r := novice.expect(TypeBye); r.Reason != "done" {
		t.Errorf("bye reason %q", r.Reason)
	}
	novice.sendRaw(`{"type":"relay","data":1}`)
	novice.expectError(CodeNotPaired)
	if code, _ := ts.get(t, "/v1/ice?session="+session); code != 404 {
		t.Errorf("/v1/ice after bye: %d, want 404", code)
	}
	expert.join("7-crayon")
	expert.expect(TypePaired)
	novice.expect(TypePaired)
}

func parseExpiry(t *testing.T, username string) time.Time {
	t.Helper()
	sec, _, _ := strings.Cut(username, ":")
	var n int64
	if err := json.Unmarshal([]byte(sec), &n); err != nil {
		t.Fatalf("username %q: %v", username, err)
	}
	return time.Unix(n, 0)
}

func TestPairedCarriesICE(t *testing.T) {
	ts := startServer(t, "", nil)
	_, _, r, _ := pairVia(t, ts, ts, "abc")
	if len(r.ICE) != 2 || r.ICE[1].URLs[0] != "turn:relay.test:3478?transport=udp" || r.ICE[1].Credential == "" {
		t.Errorf("paired ice = %+v", r.ICE)
	}
}

func TestPeerLeft(t *testing.T) {
	ts := startServer(t, "", nil)
	novice, expert, _ := ts.pair(t, "left")
	expert.ws.Close(websocket.StatusNormalClosure, "")
	novice.expect(TypePeerLeft)
	// The novice is still registered: a new expert gets it.
	e2 := ts.dial(t)
	e2.join("left")
	e2.expect(TypePaired)
	novice.expect(TypePaired)
	novice.ws.CloseNow()
	e2.expect(TypePeerLeft)
	// Now the invitation is stored but nobody holds it: as good as none.
	e2.join("left")
	e2.expectError(CodeUnknown)
}

func TestJoinErrors(t *testing.T) {
	ts := startServer(t, "", nil)
	expert := ts.dial(t)
	expert.join("nobody")
	if r := expert.expectError(CodeUnknown); r.Message != unknownMessage {
		t.Errorf("unknown: message %q", r.Message)
	}

	// A join while the novice is paired waits in line; it cannot join
	// anything else meanwhile.
	_, _, _ = ts.pair(t, "busy-one")
	e2 := ts.dial(t)
	e2.join("busy-one")
	e2.expect(TypeQueued)
	e2.join("nobody")
	e2.expectError(CodeUnexpected)

	// Errors leave the connection usable.
	e3 := ts.dial(t)
	e3.join("nobody")
	e3.expectError(CodeUnknown)
	e3.join("nobody")
	e3.expectError(CodeUnknown)
}

func TestRegisterErrors(t *testing.T) {
	ts := startServer(t, "", nil)
	n1 := ts.dial(t)
	n1.register("mine", ts.Clock.Now().Add(time.Hour))
	n1.expect(TypeRegistered)
	n2 := ts.dial(t)
	n2.register("mine", ts.Clock.Now().Add(time.Hour))
	n2.expectError(CodeTaken)
	n2.register("past", ts.Clock.Now().Add(-time.Second))
	n2.expectError(CodeExpired)
	n2.register("far", ts.Clock.Now().Add(30*24*time.Hour))
	n2.expectError(CodeInvalid)
	n1.register("again", ts.Clock.Now().Add(time.Hour))
	n1.expectError(CodeUnexpected)
	n1.join("mine")
	n1.expectError(CodeUnexpected)
	n1.sendRaw(`{"type":"bye"}`)
	n1.expectError(CodeNotPaired)
	// After the holder leaves, another agent may take the id over.
	n1.ws.Close(websocket.StatusNormalClosure, "")
	n3 := ts.dial(t)
	n3.register("mine", ts.Clock.Now().Add(time.Hour))
	n3.expect(TypeRegistered)
}

func TestHostileClients(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.MessageBurst = 5; c.MessageRate = 0.001 })
	// A bystander pair that must keep working throughout.
	novice, expert, _ := ts.pair(t, "bystander")

	big := `{"type":"relay","data":"` + strings.Repeat("A", 70<<10) + `"}`
	for _, tc := range []struct {
		name   string
		send   func(p *peer)
		code   string
		status websocket.StatusCode
	}{
		{"not json", func(p *peer) { p.sendRaw("hello") }, CodeMalformed, websocket.StatusPolicyViolation},
		{"unknown type", func(p *peer) { p.sendRaw(`{"type":"hack"}`) }, CodeMalformed, websocket.StatusPolicyViolation},
		{"unknown field", func(p *peer) { p.sendRaw(`{"type":"join","id":"x","admin":true}`) }, CodeMalformed, websocket.StatusPolicyViolation},
		{"bad id", func(p *peer) { p.sendRaw(`{"type":"join","id":"../etc"}`) }, CodeMalformed, websocket.StatusPolicyViolation},
		{"binary", func(p *peer) {
			_ = p.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"type":"join","id":"x"}`))
		}, CodeMalformed, websocket.StatusPolicyViolation},
		{"oversized", func(p *peer) { p.sendRaw(big) }, CodeTooLarge, websocket.StatusMessageTooBig},
		{"flood", func(p *peer) {
			for range 10 {
				p.sendRaw(`{"type":"bye"}`)
			}
		}, CodeRateLimited, websocket.StatusPolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ts.dial(t)
			tc.send(p)
			for {
				r := p.recv()
				if r.Code == CodeNotPaired { // the flood's first few
					continue
				}
				if r.Type != TypeError || r.Code != tc.code || r.Message == "" {
					t.Fatalf("got %+v, want error %q", r, tc.code)
				}
				break
			}
			p.expectClosed(tc.status)
		})
	}
	expert.sendRaw(`{"type":"relay","data":"still here"}`)
	if r := novice.expect(TypeRelay); string(r.Data) != `"still here"` {
		t.Errorf("bystander relay: %s", r.Data)
	}
	if v := ts.metric(t, `assist_signal_errors_total{code="malformed"}`); v != "5" {
		t.Errorf("malformed errors = %s, want 5", v)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	secret := ts.TURNSecret()
	fp := ts.Fingerprint
	n := ts.dial(t)
	exp := ts.Clock.Now().Add(time.Hour)
	n.register("survivor", exp)
	n.expect(TypeRegistered)
	// Read while the server shuts down, as a real agent would: the server
	// waits for the answer to its close frame.
	closed := make(chan error, 1)
	go func() { _, err := n.recvRaw(); closed <- err }()
	ts.stop()
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("novice's connection ended with %v, want going away", err)
	}

	ts2 := startServer(t, dir, nil)
	if ts2.Fingerprint != fp {
		t.Errorf("fingerprint changed across restart: %s, then %s", fp, ts2.Fingerprint)
	}
	if ts2.TURNSecret() != secret {
		t.Errorf("TURN secret changed across restart")
	}
	e := ts2.dial(t)
	e.join("survivor")
	e.expectError(CodeUnknown)
	n2 := ts2.dial(t)
	n2.register("survivor", exp)
	n2.expect(TypeRegistered)
	e.join("survivor")
	e.expect(TypePaired)
	n2.expect(TypePaired)

	// The pairing's event is written just after "paired" is sent.
	want := "register,register,pair"
	var got string
	for deadline := time.Now().Add(10 * time.Second); got != want && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		evs, err := ts2.Store.Events(context.Background(), time.Time{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, ev := range evs {
			kinds = append(kinds, ev.Kind)
		}
		got = strings.Join(kinds, ",")
	}
	if got != want {
		t.Errorf("audit events %s, want %s", got, want)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	ts := startServer(t, "", nil)
	if code, body := ts.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if v := ts.metric(t, `assist_signal_connections{role="novice"}`); v != "0" {
		t.Errorf("novices before = %s", v)
	}
	novice, expert, _ := ts.pair(t, "metered")
	for name, want := range map[string]string{
		`assist_signal_connections{role="novice"}`:  "1",
		`assist_signal_connections{role="expert"}`:  "1",
		`assist_signal_connections{role="pending"}`: "0",
		`assist_sessions`:                           "1",
		`assist_pairings_total`:                     "1",
	} {
		if v := ts.metric(t, name); v != want {
			t.Errorf("%s = %s, want %s", name, v, want)
		}
	}
	expert.sendRaw(`{"type":"relay","data":"12345678"}`)
	novice.expect(TypeRelay)
	if v := ts.metric(t, `assist_relayed_signal_bytes_total`); v != "10" {
		t.Errorf("relayed bytes = %s, want 10", v)
	}
	novice.sendRaw(`{"type":"bye","reason":"auth-failed"}`)
	expert.expect(TypeBye)
	if v := ts.metric(t, `assist_failed_authentications_total`); v != "1" {
		t.Errorf("failed authentications = %s, want 1", v)
	}
	if v := ts.metric(t, `assist_sessions`); v != "0" {
		t.Errorf("sessions after bye = %s", v)
	}
	novice.ws.Close(websocket.StatusNormalClosure, "")
	// The server notices the close asynchronously; a join that then finds
	// no novice proves it has.
	expert.join("metered")
	for expert.recv().Code != CodeUnknown {
		expert.join("metered")
	}
	// The gauge drops after the connection's writer has finished, just
	// after the novice is forgotten: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := ts.metric(t, `assist_signal_connections{role="novice"}`)
		if v == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("novices after close = %s", v)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthStoreDown(t *testing.T) {
	ts := startServer(t, "", nil)
	ts.Store.Close()
	if code, _ := ts.get(t, "/healthz"); code != 503 {
		t.Errorf("/healthz with the store closed: %d, want 503", code)
	}
}

func TestConfigErrors(t *testing.T) {
	st, err := OpenSQLite(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := New(Config{Store: st, ICEServers: []string{"http://x"}}); err == nil {
		t.Error("New with a bad ICE URL succeeded")
	}
}

// TestStaleSessionMessages: a novice's late bye or relay for a pairing that
// is over (the expert already left) must not reach, or end, the next
// expert's pairing.
func TestStaleSessionMessages(t *testing.T) {
	ts := startServer(t, "", nil)
	novice, expert, old := ts.pair(t, "stale")
	expert.ws.Close(websocket.StatusNormalClosure, "")
	novice.expect(TypePeerLeft)

	e2 := ts.dial(t)
	e2.join("stale")
	current := e2.expect(TypePaired).Session
	if novice.expect(TypePaired).Session != current || current == old {
		t.Fatalf("sessions: old %q, new %q", old, current)
	}
	// Late messages of the old pairing are dropped and reported.
	novice.sendRaw(`{"type":"relay","data":"late","session":"` + old + `"}`)
	novice.expectError(CodeNotPaired)
	novice.sendRaw(`{"type":"bye","reason":"auth-failed","session":"` + old + `"}`)
	novice.expectError(CodeNotPaired)
	// The new pairing is untouched: messages naming it go through.
	novice.sendRaw(`{"type":"relay","data":"hello","session":"` + current + `"}`)
	if got, err := e2.recvRaw(); err != nil || string(got) != `{"type":"relay","data":"hello"}` {
		t.Fatalf("expert got %s (%v)", got, err)
	}
	e2.sendRaw(`{"type":"bye","reason":"done","session":"` + current + `"}`)
	if r := novice.expect(TypeBye); r.Reason != "done" {
		t.Errorf("bye reason %q", r.Reason)
	}
}
