package rtc

import (
	"context"
	"regexp"
	"sync"
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
	if _, err := s.offerRestart(); err != nil {
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

// deafSignaler takes every message and delivers none: a signalling path
// that died without anyone knowing yet.
type deafSignaler struct{}

func (deafSignaler) Send(context.Context, []byte) error { return nil }
func (deafSignaler) Recv(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestSetICEServers: a relayed connection loses its relay (the TURN
// server stops, as when the rendezvous node running it dies). Both ends
// are handed another relay with SetICEServers, as a resumed pairing's ICE
// list; the expert's next ICE restart gathers with it, and the connection
// comes back through the new relay, the same session. In "pending", the
// expert's first restart offer went into a dead signalling path, and the
// new relay comes with a new path (Resignal): the unanswered offer, whose
// gathering found no relay, is replaced by one gathered with the new
// servers.
func TestSetICEServers(t *testing.T) {
	for _, pending := range []bool{false, true} {
		t.Run(map[bool]string{false: "connected", true: "pending"}[pending], func(t *testing.T) {
			testSetICEServers(t, pending)
		})
	}
}

func testSetICEServers(t *testing.T, pending bool) {
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

	if pending {
		e.Resignal(deafSignaler{})
		n.Resignal(deafSignaler{})
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if pending {
		// The resumer offers a restart by itself (restartAfter) into
		// the dead path.
		deadline := time.Now().Add(restartAfter + 10*time.Second)
		for e.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			if time.Now().After(deadline) {
				t.Fatalf("the expert offered no restart: %v", e.pc.SignalingState())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Its gathering (from the dead relay) ends first: pion updates
		// a gathering agent's servers without a lock, which the race
		// detector reports even long after the gathering read them.
		// A resumed pairing comes seconds after the offer, as here.
		start := time.Now()
		for e.pc.ICEGatheringState() != webrtc.ICEGatheringStateComplete {
			if time.Since(start) > MaxOutage {
				t.Fatalf("the expert's gathering for its restart offer did not end")
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("the expert's gathering with the dead relay ended after %v", time.Since(start).Round(time.Millisecond))
	}
	for _, c := range []*Conn{e, n} {
		if err := c.SetICEServers(iceOf(freshURL)); err != nil {
			t.Fatal(err)
		}
	}
	// Offers on the new path: the unanswered one again (pion cannot roll
	// it back), then, once answered, one gathered with the new servers
	// at once, not restartEvery later.
	var (
		offersMu sync.Mutex
		offers   []time.Time
	)
	if pending {
		es2, ns2 := sigPair()
		e.Resignal(&funcSignaler{Signaler: es2, send: func(m []byte) []byte {
			if sg, err := parseSignal(m); err == nil && sg.Type == typeOffer {
				offersMu.Lock()
				offers = append(offers, time.Now())
				offersMu.Unlock()
			}
			return m
		}})
		n.Resignal(ns2)
	}
	// The resumer restarts ICE by itself: after restartAfter, or at once
	// on a new signalling path.
	deadline := time.Now().Add(restartAfter + MaxOutage/2)
	for fresh.AllocationCount() == 0 || e.pc.ConnectionState() != webrtc.PeerConnectionStateConnected ||
		n.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatalf("not back through the new relay: %d allocations there, states %v / %v",
				fresh.AllocationCount(), e.pc.ConnectionState(), n.pc.ConnectionState())
		}
		time.Sleep(50 * time.Millisecond)
	}
	offersMu.Lock()
	if pending && (len(offers) != 2 || offers[1].Sub(offers[0]) >= restartEvery) {
		t.Errorf("restart offers on the new signalling path at %v; want the old one again, then a new one at once (before restartEvery, %v)", offers, restartEvery)
	}
	offersMu.Unlock()
	exchange(t, e, n, 64<<10)
	if got := e.Path(); got != PathRelayUDP {
		t.Errorf("expert's path after the restart: %s, want %s", got, PathRelayUDP)
	}
	if string(n.SessionKey("test", 16)) != string(key) {
		t.Error("the session key changed")
	}
}
