package rtc

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

var ufragRE = regexp.MustCompile(`a=ice-ufrag:(\S+)`)

// ufrag returns the ICE username fragment of a description.
func ufrag(t *testing.T, d *webrtc.SessionDescription) string {
	t.Helper()
	if d == nil {
		t.Fatal("no description")
	}
	m := ufragRE.FindStringSubmatch(d.SDP)
	if m == nil {
		t.Fatalf("no ice-ufrag in %q", d.SDP)
	}
	return m[1]
}

// restartNow makes the expert offer an ICE restart on its current
// signalling and waits until both ends use the new credentials and are
// connected again.
func restartNow(t *testing.T, e, n *Conn) {
	t.Helper()
	before := ufrag(t, n.pc.RemoteDescription())
	s := e.rs.current()
	if s == nil {
		t.Fatal("the expert has no signalling")
	}
	if err := s.offerRestart(false); err != nil {
		t.Fatalf("offerRestart: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		after := ufrag(t, n.pc.RemoteDescription())
		if after != before && after == ufrag(t, e.pc.LocalDescription()) &&
			e.pc.SignalingState() == webrtc.SignalingStateStable &&
			e.pc.ConnectionState() == webrtc.PeerConnectionStateConnected &&
			n.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ICE restart: the novice's remote ufrag went %q -> %q (expert's %q), states %v / %v",
				before, after, ufrag(t, e.pc.LocalDescription()), e.pc.ConnectionState(), n.pc.ConnectionState())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestICERestart: after the handshake the signalling stays open, an ICE
// restart over it changes both ends' ICE credentials, and the
// authenticated connection carries on with the same session key, before
// and after.
func TestICERestart(t *testing.T) {
	e, n := mustConnect(t)
	key := e.SessionKey("test", 16)
	exchange(t, e, n, 64<<10)
	restartNow(t, e, n)
	exchange(t, e, n, 64<<10)
	restartNow(t, e, n)
	exchange(t, n, e, 64<<10)
	if string(n.SessionKey("test", 16)) != string(key) {
		t.Error("the session key changed over ICE restarts")
	}
}

// TestResignal: the signalling path breaks (the rendezvous server went
// away); the connection carries on without it, and a new path handed to
// both ends with Resignal carries the next ICE restart.
func TestResignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	a, b := make(chan []byte, 256), make(chan []byte, 256)
	es, ns := &chanSignaler{in: a, out: b}, &chanSignaler{in: b, out: a}
	er, nr := connectPair(t, ctx, es, ns, testConfig(t), testConfig(t))
	if er.err != nil || nr.err != nil {
		t.Fatalf("Dial: %v\nAccept: %v", er.err, nr.err)
	}
	e, n := er.c, nr.c
	close(a)
	close(b)
	for _, c := range []*Conn{e, n} {
		deadline := time.Now().Add(5 * time.Second)
		for c.rs.current() != nil {
			if time.Now().After(deadline) {
				t.Fatal("a Conn did not notice its signalling broke")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	exchange(t, e, n, 64<<10)

	es2, ns2 := sigPair()
	e.Resignal(es2)
	n.Resignal(ns2)
	restartNow(t, e, n)
	exchange(t, e, n, 64<<10)

	// After Close, Resignal does nothing and PathChanges is closed.
	e.Close()
	e.Resignal(es2)
	if _, ok := <-e.PathChanges(); ok {
		t.Error("PathChanges delivered a path after Close")
	}
}

// TestSetICEServers: a relayed connection loses its relay (the TURN
// server stops, as when the rendezvous node running it dies). Both ends
// are handed another relay with SetICEServers, as a resumed pairing's ICE
// list; the expert's next ICE restart gathers with it, and the connection
// comes back through the new relay, the same session.
func TestSetICEServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	old, oldURL, _ := startTURNServer(t)
	fresh, freshURL, _ := startTURNServer(t)
	iceOf := func(url string) []webrtc.ICEServer {
		return []webrtc.ICEServer{{URLs: []string{url}, Username: "user", Credential: "secret"}}
	}
	cfg := testConfig(t)
	cfg.ICEServers, cfg.RelayOnly = iceOf(oldURL), true
	es, ns := sigPair()
	er, nr := connectPair(t, ctx, es, ns, cfg, cfg)
	if er.err != nil || nr.err != nil {
		t.Fatalf("Dial: %v\nAccept: %v", er.err, nr.err)
	}
	e, n := er.c, nr.c
	key := e.SessionKey("test", 16)
	exchange(t, e, n, 64<<10)
	if old.AllocationCount() == 0 || fresh.AllocationCount() != 0 {
		t.Fatalf("allocations before: old relay %d, new %d", old.AllocationCount(), fresh.AllocationCount())
	}

	for _, c := range []*Conn{e, n} {
		if err := c.SetICEServers(iceOf(freshURL)); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// The resumer notices the path is gone and restarts ICE by itself
	// (restartAfter).
	deadline := time.Now().Add(restartAfter + MaxOutage/2)
	for fresh.AllocationCount() == 0 || e.pc.ConnectionState() != webrtc.PeerConnectionStateConnected ||
		n.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatalf("not back through the new relay: %d allocations there, states %v / %v",
				fresh.AllocationCount(), e.pc.ConnectionState(), n.pc.ConnectionState())
		}
		time.Sleep(50 * time.Millisecond)
	}
	exchange(t, e, n, 64<<10)
	if got := e.Path(); got != PathRelayUDP {
		t.Errorf("expert's path after the restart: %s, want %s", got, PathRelayUDP)
	}
	if string(n.SessionKey("test", 16)) != string(key) {
		t.Error("the session key changed")
	}
}
