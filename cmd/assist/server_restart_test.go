package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/lab"
)

// TestServerRestart: the rendezvous server going away in the middle of a
// session does not end it (the WebRTC connection does not go through the
// server), and once `assist serve` is back on the same address with the
// same --data, the novice's agent is registered again, so the next expert
// joins with the same code.
func TestServerRestart(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newDesktop(t)
	data := t.TempDir()
	srv := startServe(t, data)
	nov := startServerInvite(t, d.Display, srv)

	exp := lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName,
		"--server", srv.URL, "--server-fingerprint", srv.Fingerprint, nov.Code)
	exp.WaitLine(t, `^path: \S+$`, lineTimeout)
	rfbAddr := exp.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
	web := exp.WaitLine(t, `^browser viewer: (http://\S+)$`, lineTimeout)[1]
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` connected from `, lineTimeout)
	c := lab.DialRFB(t, rfbAddr)
	lab.WaitMatch(t, d.X, c.Screen, 0, matchTimeout)

	srv.stop(t)
	t.Log("assist serve stopped")
	// Both ends notice the server has gone...
	waitStderr(t, nov.LineProc, `msg="rendezvous server: connection lost, registering again"`, 2)

	// ...and the session goes on: the same viewer sees a change made now,
	// and chat goes both ways.
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, c.Screen, 0, matchTimeout)
	nov.Send(t, "say still there?")
	exp.WaitLine(t, `^the novice: still there\?$`, lineTimeout)
	openPage(t, web).send(t, map[string]string{"type": "chat", "text": "yes, still here"})
	nov.WaitLine(t, `^`+expertName+`: yes, still here$`, lineTimeout)

	// The server comes back where it was; the novice registers again, both
	// the code's number and the invitation's id.
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	registered := strings.Count(nov.Stderr(), `msg="rendezvous server: registered again"`)
	srv2 := startServe(t, data, "--listen", u.Host)
	if srv2.URL != srv.URL || srv2.Fingerprint != srv.Fingerprint {
		t.Fatalf("assist serve came back at %s (%s), want %s (%s)", srv2.URL, srv2.Fingerprint, srv.URL, srv.Fingerprint)
	}
	waitStderr(t, nov.LineProc, `msg="rendezvous server: registered again"`, registered+2)
	d.Append(t, 3)
	lab.WaitMatch(t, d.X, c.Screen, 0, matchTimeout)

	// The first expert leaves; the next one joins with the same code,
	// through the server that came back.
	stop(t, exp, "assist join")
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	exp2 := lab.StartLines(t, nil, lab.AssistBinary(t), "join", "--no-browser", "--name", expertName,
		"--server", srv.URL, "--server-fingerprint", srv.Fingerprint, nov.Code)
	rfb2 := exp2.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
	exp2.WaitLine(t, `^state: viewing`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` connected from `, lineTimeout)
	lab.WaitMatch(t, d.X, lab.DialRFB(t, rfb2).Screen, 0, matchTimeout)
	stop(t, exp2, "assist join")
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	stop(t, nov.LineProc, "assist invite")
	srv2.stop(t)
}
