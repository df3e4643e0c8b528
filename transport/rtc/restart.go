package rtc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// ICE restarts. Once authenticated, a Conn keeps its signalling for as long
// as it lives. When the network path breaks (the connection goes
// "disconnected" and stays so, or "failed"), the expert, which made the
// first offer, makes a new one with fresh ICE credentials (an ICE restart,
// RFC 8445 section 2.4) and the novice answers it: both gather candidates
// again and ICE finds a new path. DTLS, SCTP and the data channel stay as
// they are, so the session above goes on where it was: no new handshake,
// no new password, no question to the novice. Data written meanwhile waits
// in SCTP's send queue and arrives once the path is back.
//
// The signalling may break too (the rendezvous server restarting, the
// network taking the WebSocket down with it): then the Conn waits for its
// owner to hand it a new Signaler (Resignal), e.g. after joining the server
// again. A Conn that has no path for MaxOutage closes, so a peer that is
// gone for good ends the session and frees the invitation.
//
// A restart offer needs no authentication of its own: whoever sends one
// can at most redirect ICE's checks, and DTLS (keyed by the handshake that
// the PAKE authenticated) accepts no packet from anyone but the peer. The
// worst a hostile signalling path can do is what it can always do: cut the
// connection.

// Timing of ICE restarts.
const (
	// restartAfter is how long the connection may stay "disconnected"
	// before the expert restarts ICE. ICE recovers from a short blip by
	// itself (its checks go on on the selected pair), and a restart would
	// throw that pair away.
	restartAfter = 5 * time.Second
	// restartEvery is how often the expert offers a restart again while
	// the path is not back: the last offer may have gone into a signalling
	// path that is dead but not yet known to be.
	restartEvery = 10 * time.Second
	// MaxOutage is how long a Conn stays open without a network path to
	// its peer.
	MaxOutage = 60 * time.Second
)

// resumer keeps an authenticated Conn's signalling and restarts ICE.
type resumer struct {
	c      *Conn
	expert bool
	log    *slog.Logger

	mu  sync.Mutex
	sig *setup // the current signalling; nil while there is none

	states chan webrtc.PeerConnectionState
	poke   chan struct{}   // new signalling, or the peer restarted
	paths  chan PathChange // see Conn.PathChanges
	// lastPath is the path last reported (or found at authentication);
	// only run touches it.
	lastPath string
	// peerRestarted is set (novice) when the peer's restart offer was
	// applied; reported once the connection is back.
	peerRestarted chan struct{}
	stop          chan struct{}
	stopOnce      sync.Once
	wg            sync.WaitGroup
}

// adopt turns the setup's signalling into the Conn's, for ICE restarts,
// and starts watching the connection.
func (c *Conn) adopt(s *setup, expert bool, log *slog.Logger) {
	r := &resumer{c: c, expert: expert, log: log, states: make(chan webrtc.PeerConnectionState, 16),
		poke: make(chan struct{}, 1), paths: make(chan PathChange, 4), lastPath: c.Path(), peerRestarted: make(chan struct{}, 1),
		stop: make(chan struct{})}
	c.rsMu.Lock()
	c.rs = r
	c.rsMu.Unlock()
	r.use(s)
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		r.mu.Lock()
		s := r.sig
		r.mu.Unlock()
		if s != nil {
			s.onCandidate(cand)
		}
	})
	// The controlling end (the expert; a browser, for one) may nominate
	// a relayed pair first and a direct one a moment later: look again
	// at every change of the selected pair.
	if sctp := c.pc.SCTP(); sctp != nil && sctp.Transport() != nil && sctp.Transport().ICETransport() != nil {
		sctp.Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {
			select {
			case r.poke <- struct{}{}:
			default:
			}
		})
	}
	c.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		log.Debug("rtc: connection state", "state", st.String())
		select {
		case r.states <- st:
		default:
		}
	})
	r.wg.Add(1)
	go r.run()
}

// use makes s the current signalling, in established mode.
func (r *resumer) use(s *setup) {
	s.desc.Lock()
	s.established = true
	s.onRestart = func() {
		select {
		case r.peerRestarted <- struct{}{}:
		default:
		}
	}
	s.desc.Unlock()
	r.mu.Lock()
	old := r.sig
	r.sig = s
	r.mu.Unlock()
	if old != nil && old != s {
		old.stop()
	}
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Resignal gives the Conn a new signalling path to its peer, e.g. a new
// pairing at the rendezvous server after the old one broke. The Conn reads
// and writes sig until it closes or gets another one; the old one is
// dropped. If the connection is down, the expert's side restarts ICE over
// sig at once. Resignal before Dial or Accept returned, or after Close,
// does nothing.
func (c *Conn) Resignal(sig Signaler) {
	c.rsMu.Lock()
	r := c.rs
	c.rsMu.Unlock()
	if r == nil {
		return
	}
	select {
	case <-r.stop:
		return
	default:
	}
	s := newSetup(c.pc, sig, r.expert, r.log, c.remoteHosts, c.setup.desc)
	// The descriptions are in place: what comes now is restarts.
	s.haveRemote = true
	s.startLoops(context.Background(), true)
	r.log.Info("rtc: new signalling path")
	r.use(s)
}

// SetICEServers replaces the STUN and TURN servers the next ICE restart
// gathers with, e.g. those of the pairing that Resignal's signalling
// belongs to when the relay the connection was set up with is gone (its
// node died: its TURN URL would give no candidate). Candidates of the
// servers in use stay until a restart. On the expert's side, while the
// connection is down, a restart offer still unanswered (gathered with the
// old servers) is sent again as it is, and once it is answered a new one
// gathered with these servers follows at once.
func (c *Conn) SetICEServers(servers []webrtc.ICEServer) error {
	// pion's configuration has no lock of its own: changes to it take
	// turns with the descriptions' (offers, answers, restarts).
	if c.setup != nil {
		c.setup.desc.Lock()
		defer c.setup.desc.Unlock()
	}
	cfg := c.pc.GetConfiguration()
	moved := !slices.Equal(iceURLs(cfg.ICEServers), iceURLs(servers))
	cfg.ICEServers = servers
	c.cfgMu.Lock()
	err := c.pc.SetConfiguration(cfg)
	c.cfgMu.Unlock()
	if err != nil {
		return fmt.Errorf("rtc: new ICE servers: %w", err)
	}
	if c.turn != nil {
		c.turn.addServers(servers)
	}
	// The same servers with fresh credentials (the same rendezvous
	// server, back) need no hurry: a restart under way may be about to
	// succeed, and another would throw its checks away.
	if moved {
		c.serversChanged.Store(true)
	}
	return nil
}

// iceURLs lists the servers' URLs, sorted.
func iceURLs(servers []webrtc.ICEServer) []string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URLs...)
	}
	slices.Sort(urls)
	return urls
}

// PathChange is a new path of the connection (see Conn.Path).
type PathChange struct {
	Path string
	// Restart is set when an ICE restart brought the connection back
	// (the path may then be the same as before).
	Restart bool
}

// PathChanges delivers the connection's path each time an ICE restart
// brought it back, and each time ICE moved to a pair of another kind (a
// punched pair found after a relayed one, say). It is closed when the
// Conn closes. Reading it is optional: values nobody reads are dropped.
func (c *Conn) PathChanges() <-chan PathChange {
	c.rsMu.Lock()
	defer c.rsMu.Unlock()
	if c.rs == nil {
		return nil
	}
	return c.rs.paths
}

// shutdown stops the resumer and its signalling and waits for them.
func (r *resumer) shutdown() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
		close(r.paths)
	})
	r.mu.Lock()
	s := r.sig
	r.sig = nil
	r.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

func (r *resumer) current() *setup {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sig
}

// run watches the connection until the Conn closes.
func (r *resumer) run() {
	defer r.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		downSince time.Time // zero while connected
		restarted bool      // an ICE restart happened in this outage
		lastOffer time.Time
		offeredOn *setup // the signalling the last offer went to
	)
	for {
		select {
		case <-r.stop:
			return
		case <-r.states:
		case <-r.poke:
		case <-r.peerRestarted:
			restarted = true
		case <-tick.C:
		}
		if s := r.current(); s != nil {
			select {
			case <-s.broken:
				r.log.Info("rtc: signalling lost; the connection goes on, and needs a new signalling path for ICE restarts", "err", s.brokenErr)
				r.mu.Lock()
				if r.sig == s {
					r.sig = nil
				}
				r.mu.Unlock()
				s.stop()
			default:
			}
		}
		st := r.c.pc.ConnectionState()
		now := time.Now()
		switch st {
		case webrtc.PeerConnectionStateClosed:
			return
		case webrtc.PeerConnectionStateConnected:
			path := r.c.Path()
			if !downSince.IsZero() || restarted {
				r.log.Info("rtc: connection back", "ice_restart", restarted, "path", path, "after", now.Sub(downSince).Round(time.Millisecond))
			}
			if restarted || path != r.lastPath && path != PathUnknown {
				if !restarted {
					r.log.Info("rtc: path changed", "from", r.lastPath, "path", path)
				}
				r.lastPath = path
				select {
				case r.paths <- PathChange{Path: path, Restart: restarted}:
				default:
				}
			}
			downSince, restarted, offeredOn = time.Time{}, false, nil
			continue
		}
		if downSince.IsZero() {
			downSince = now
			r.log.Info("rtc: connection lost", "state", st.String())
		}
		if now.Sub(downSince) > MaxOutage {
			r.log.Info("rtc: no path to the peer for too long: closing", "for", MaxOutage)
			go r.c.Close()
			return
		}
		s := r.current()
		if !r.expert || s == nil {
			continue
		}
		due := st == webrtc.PeerConnectionStateFailed || now.Sub(downSince) >= restartAfter
		// New ICE servers (SetICEServers) since the last fresh offer,
		// and the offer sent again meanwhile (gathered with the old
		// ones) is answered: gather with them now, not after
		// restartEvery. pion cannot roll an unanswered offer back.
		newServers := r.c.serversChanged.Load() && s.pc.SignalingState() == webrtc.SignalingStateStable
		if !due || offeredOn == s && now.Sub(lastOffer) < restartEvery && !newServers {
			continue
		}
		fresh, err := s.offerRestart()
		if fresh {
			r.c.serversChanged.Store(false)
		}
		if err != nil {
			r.log.Info("rtc: ICE restart not offered", "err", err)
			lastOffer, offeredOn = now, s
			continue
		}
		r.log.Info("rtc: ICE restart offered", "state", st.String(), "down_for", now.Sub(downSince).Round(time.Millisecond))
		lastOffer, offeredOn, restarted = now, s, true
	}
}

// offerRestart sends an offer with new ICE credentials (expert), and
// reports whether it made a new one (fresh). If the last offer is still
// unanswered (it may have gone into a signalling path that died), it is
// sent again instead, with the candidates gathered for it since: pion
// cannot replace an offer it has not had an answer to.
func (s *setup) offerRestart() (fresh bool, err error) {
	s.desc.Lock()
	defer s.desc.Unlock()
	var sdp string
	if s.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		d := s.pc.LocalDescription()
		if d == nil {
			return false, fmt.Errorf("no pending offer to send again")
		}
		sdp = d.SDP
	} else {
		offer, err := s.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
		if err != nil {
			return false, fmt.Errorf("offer: %w", err)
		}
		sdp, fresh = offer.SDP, true
		defer func() {
			// After the offer is queued, so it leaves before any of the
			// new gathering's candidates.
			if err := s.pc.SetLocalDescription(offer); err != nil {
				s.log.Info("rtc: restart offer not applied", "err", err)
			}
		}()
	}
	b, err := signal{Type: typeOffer, SDP: sdp}.marshal()
	if err != nil {
		return fresh, fmt.Errorf("offer: %w", err)
	}
	s.enqueue(b)
	s.offers++
	// The peer's candidates wait for its answer.
	s.haveRemote = false
	return fresh, nil
}
