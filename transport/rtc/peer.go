package rtc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
)

// dataChannelLabel names the one data channel. Both ends create it
// themselves (negotiated, id 0): no in-band DCEP open message, so nothing
// about the channel depends on the other end's say.
const dataChannelLabel = "assist"

// Dial is the expert's side: it creates the offer, sends it and its ICE
// candidates through sig, and applies the novice's answer and candidates.
// Once the data channel is open it runs the PAKE inside it, bound to both
// ends' DTLS certificates (see the package documentation), and returns the
// authenticated Conn.
//
// After it returns, the Conn keeps reading and writing sig, for ICE
// restarts (see restart.go), until it closes or gets another Signaler from
// Resignal; sig must then return from Recv and Send promptly once their
// context is done. Errors are *HandshakeError; ctx bounds the whole setup.
func Dial(ctx context.Context, sig Signaler, cfg Config) (*Conn, error) {
	return connect(ctx, sig, &cfg, true)
}

// Accept is the novice's side: it waits for the expert's offer on sig,
// answers it, and authenticates the expert inside the data channel.
//
// Accept does not count failed attempts: it returns an error wrapping
// ErrWrongPassword whenever the expert may have tested a password guess (from
// the moment the novice sent its key confirmation, anything but a verified
// expert confirmation). The caller counts those, and stops calling Accept
// for an invitation after a few. Other errors (ErrSignalling,
// ErrUnreachable, ErrNotAssist, ErrUnknownInvitation, ErrVersion, ctx) cost
// no attempt.
func Accept(ctx context.Context, sig Signaler, cfg Config) (*Conn, error) {
	return connect(ctx, sig, &cfg, false)
}

func connect(ctx context.Context, sig Signaler, cfg *Config, expert bool) (*Conn, error) {
	if err := cfg.check(expert); err != nil {
		return nil, &HandshakeError{Stage: "config", Cause: err}
	}
	role := "novice"
	if expert {
		role = "expert"
	}
	log := cfg.logger().With("role", role)
	if !cfg.SecretInvitationID {
		log = log.With("invitation", cfg.InvitationID)
	}

	openCtx := ctx
	if !expert {
		// The novice's stage deadline for the connection itself: an expert
		// who pairs and then sends no offer, or an offer that can never
		// connect, holds the invitation for seconds, not for the whole
		// setup's time. The signalling loops outlive openCtx (they run on
		// a context without its cancellation).
		t := cfg.OpenTimeout
		if t <= 0 {
			t = DefaultOpenTimeout
		}
		var cancel context.CancelFunc
		openCtx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	c, localFP, stopSignalling, err := open(openCtx, sig, cfg, expert, log)
	if err != nil {
		return nil, err
	}
	// Signalling goes on during the PAKE: the peer's last candidates may
	// still be on their way, and Path needs them to tell a direct path
	// from a punched one.
	if err := authenticateInTurn(ctx, c, cfg, expert, localFP); err != nil {
		stopSignalling()
		log.Info("rtc: authentication failed", "err", err)
		// Our last message (a refusal, a verdict) must reach the peer
		// before closing aborts the association.
		c.flush(ctx, flushTimeout)
		c.Close()
		return nil, err
	}
	log.Info("rtc: authenticated", "path", c.Path(), "peer_name", c.peerName)
	// From now on the signalling serves ICE restarts, for as long as the
	// Conn lives (see restart.go).
	c.adopt(c.setup, expert, log)
	return c, nil
}

// open sets up the peer connection through sig and returns it once the data
// channel is open, not yet authenticated, with our certificate's
// fingerprint.
//
// Signalling continues until the caller calls stop (which open does itself
// when it fails).
func open(ctx context.Context, sig Signaler, cfg *Config, expert bool, log *slog.Logger) (c *Conn, localFP []byte, stop func(), err error) {
	cert, localFP, err := newCertificate()
	if err != nil {
		return nil, nil, nil, &HandshakeError{Stage: "config", Cause: fmt.Errorf("certificate: %w", err)}
	}
	api, turn, err := newAPI(cfg, log)
	if err != nil {
		return nil, nil, nil, &HandshakeError{Stage: "config", Cause: err}
	}
	pcCfg := webrtc.Configuration{
		ICEServers:   cfg.ICEServers,
		Certificates: []webrtc.Certificate{cert},
	}
	if cfg.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		return nil, nil, nil, &HandshakeError{Stage: "config", Cause: fmt.Errorf("peer connection: %w", err)}
	}
	s := newSetup(pc, sig, expert, log, new(hostSet), new(sync.Mutex))
	s.opened = make(chan openResult, 1)
	if !expert {
		s.offered = make(chan struct{})
		s.offerTimeout = cfg.OfferTimeout
		if s.offerTimeout <= 0 {
			s.offerTimeout = DefaultOfferTimeout
		}
	}
	err = s.start(ctx)
	if err != nil {
		pc.GracefulClose()
		return nil, nil, nil, &HandshakeError{Stage: "signalling", Cause: err}
	}
	raw, err := s.wait(ctx)
	if err != nil {
		pc.GracefulClose()
		return nil, nil, nil, err
	}

	c = newConn(pc, raw)
	c.turn = turn
	c.remoteHosts = s.hosts
	c.setup = s
	// Until the handshake is over, a failed connection (the peer's
	// process died) ends the attempt; afterwards the resumer decides
	// (restart.go).
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		log.Debug("rtc: connection state", "state", st.String())
		if st == webrtc.PeerConnectionStateFailed {
			go c.Close()
		}
	})
	return c, localFP, s.stop, nil
}

// authenticateInTurn is authenticate inside cfg.BeforeAuth's turn, if
// there is one.
func authenticateInTurn(ctx context.Context, c *Conn, cfg *Config, expert bool, localFP []byte) error {
	if cfg.BeforeAuth == nil {
		return authenticate(ctx, c, cfg, expert, localFP)
	}
	done, err := cfg.BeforeAuth(ctx)
	if err != nil {
		return &HandshakeError{Stage: "hello", Cause: err}
	}
	err = authenticate(ctx, c, cfg, expert, localFP)
	done(err)
	return err
}

// authenticate runs the PAKE inside the open data channel, bound to the
// certificates DTLS actually used.
func authenticate(ctx context.Context, c *Conn, cfg *Config, expert bool, localFP []byte) error {
	// Cancelling ctx closes the peer connection, which unblocks any read or
	// write of the handshake.
	stop := context.AfterFunc(ctx, func() { c.pc.Close() })
	defer stop()
	d, ok := ctx.Deadline()
	if !expert {
		// The novice's own stage deadline: a peer that opened the data
		// channel and stalls holds the pairing for seconds, not for the
		// whole setup's time.
		t := cfg.AuthTimeout
		if t <= 0 {
			t = DefaultAuthTimeout
		}
		if limit := time.Now().Add(t); !ok || limit.Before(d) {
			d, ok = limit, true
		}
	}
	if ok {
		c.SetDeadline(d)
		// pion keeps a goroutine per read deadline until it passes or is
		// cleared.
		defer c.SetDeadline(time.Time{})
	}
	remote := c.pc.SCTP().Transport().GetRemoteCertificate()
	if len(remote) == 0 {
		return &HandshakeError{Stage: "pake", Cause: errors.New("no remote DTLS certificate")}
	}
	remoteFP := sha256.Sum256(remote)
	bind := cfg.bindOverride
	if bind == nil {
		if expert {
			bind = bindingContext(localFP, remoteFP[:])
		} else {
			bind = bindingContext(remoteFP[:], localFP)
		}
	}
	var err error
	if expert {
		c.res, err = expertHandshake(c, cfg, bind)
	} else {
		c.res, c.peerName, err = noviceHandshake(c, cfg, bind)
	}
	if err != nil {
		// A cancelled or expired ctx shows in the error, but the kind stays:
		// a novice's counted attempt is still counted.
		var he *HandshakeError
		if ctx.Err() != nil && errors.As(err, &he) {
			he.Cause = fmt.Errorf("%w (%v)", ctx.Err(), he.Cause)
		}
		return err
	}
	if !stop() {
		return &HandshakeError{Stage: "pake", Cause: ctx.Err()}
	}
	return nil
}

// openResult is the data channel, detached, once it is open.
type openResult struct {
	rw  datachannel.ReadWriteCloserDeadliner
	err error
}

// setup carries one connection from signalling to an open data channel.
type setup struct {
	pc     *webrtc.PeerConnection
	sig    Signaler
	expert bool
	log    *slog.Logger

	opened chan openResult
	// offered, for the novice's first setup, is closed once the expert's
	// offer is in place; wait gives up if it is not by offerTimeout.
	offered      chan struct{}
	offeredOnce  sync.Once
	offerTimeout time.Duration
	// failed is closed when ICE or DTLS fails for good.
	failed     chan struct{}
	failedOnce sync.Once

	// out is the queue of messages to send, in order; wake tells the
	// sender there is more. outDone says no more will come.
	mu      sync.Mutex
	out     [][]byte
	outDone bool
	wake    chan struct{}

	// sigErr receives the first fatal signalling error.
	sigErr  chan error
	loopCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// broken is closed when a loop stopped on an error (the Signaler
	// broke, or sent something bad); brokenErr says why.
	broken     chan struct{}
	brokenOnce sync.Once
	brokenErr  error

	// hosts are the peer's host candidates, for Path.
	hosts    *hostSet
	stopOnce sync.Once

	// desc serialises changes of the session descriptions: after the
	// handshake the resumer offers ICE restarts while the receiving
	// goroutine applies answers. It is the Conn's, shared by every
	// setup of one connection.
	desc *sync.Mutex
	// established is set once the handshake is over: then the novice
	// takes new offers (ICE restarts) and bad messages end only this
	// Signaler, not the connection.
	established bool
	// offers and answers count, in established mode, the restart offers
	// sent and the answers received on this Signaler: only the answer
	// to the latest offer is applied. Guarded by desc.
	offers, answers int
	// onRestart, if set, is called when the peer's restart offer was
	// applied (novice).
	onRestart func()

	// remote description state, owned by the receiving goroutine.
	haveRemote bool
	pending    []webrtc.ICECandidateInit
	nCand      int
}

func newSetup(pc *webrtc.PeerConnection, sig Signaler, expert bool, log *slog.Logger, hosts *hostSet, desc *sync.Mutex) *setup {
	return &setup{pc: pc, sig: sig, expert: expert, log: log, failed: make(chan struct{}),
		wake: make(chan struct{}, 1), hosts: hosts, desc: desc, broken: make(chan struct{})}
}

// onCandidate sends a local candidate (nil: the end of them) to the peer.
func (s *setup) onCandidate(c *webrtc.ICECandidate) {
	var m signal
	if c == nil {
		m = signal{Type: typeEnd}
	} else {
		init := c.ToJSON()
		m = signal{Type: typeCandidate, Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}
	}
	b, err := m.marshal()
	if err != nil {
		s.log.Debug("rtc: local candidate not sent", "err", err)
		return
	}
	s.enqueue(b)
}

// startLoops starts the sending and receiving goroutines. They run until
// stop, not until ctx ends: a Conn keeps them for ICE restarts.
func (s *setup) startLoops(ctx context.Context, recv bool) {
	s.loopCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.sigErr = make(chan error, 2)
	s.wg.Add(1)
	go s.sendLoop(s.loopCtx)
	if recv {
		s.startRecv()
	}
}

func (s *setup) startRecv() {
	s.wg.Add(1)
	go s.recvLoop(s.loopCtx)
}

// fail reports a loop's fatal error.
func (s *setup) fail(err error) {
	select {
	case s.sigErr <- err:
	default:
	}
	s.brokenOnce.Do(func() {
		s.brokenErr = err
		close(s.broken)
	})
}

// start creates the data channel, hooks the callbacks and starts the
// signalling goroutines; the expert also sends its offer.
func (s *setup) start(ctx context.Context) error {
	negotiated, id := true, uint16(0)
	dc, err := s.pc.CreateDataChannel(dataChannelLabel, &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id})
	if err != nil {
		return fmt.Errorf("data channel: %w", err)
	}
	dc.OnOpen(func() {
		rw, err := dc.DetachWithDeadline()
		select {
		case s.opened <- openResult{rw: rw, err: err}:
		default:
		}
	})
	s.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("rtc: connection state", "state", st.String())
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			s.failedOnce.Do(func() { close(s.failed) })
		}
	})
	s.pc.OnICECandidate(s.onCandidate)
	s.startLoops(ctx, false)
	if s.expert {
		offer, err := s.pc.CreateOffer(nil)
		if err != nil {
			s.stop()
			return fmt.Errorf("offer: %w", err)
		}
		b, err := signal{Type: typeOffer, SDP: offer.SDP}.marshal()
		if err != nil {
			s.stop()
			return fmt.Errorf("offer: %w", err)
		}
		// Queued before gathering starts, so it leaves before any
		// candidate.
		s.enqueue(b)
		if err := s.pc.SetLocalDescription(offer); err != nil {
			s.stop()
			return fmt.Errorf("offer: %w", err)
		}
		s.offers++
	}
	// Receiving starts only now: an answer must find our offer in place.
	s.startRecv()
	return nil
}

// stop ends the signalling goroutines and waits for them.
func (s *setup) stop() {
	s.stopOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
}

func (s *setup) enqueue(b []byte) {
	s.mu.Lock()
	if !s.outDone {
		s.out = append(s.out, b)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sendLoop sends queued messages in order until ctx ends.
func (s *setup) sendLoop(ctx context.Context) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.outDone, s.out = true, nil
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		q := s.out
		s.out = nil
		s.mu.Unlock()
		for _, b := range q {
			if err := s.sig.Send(ctx, b); err != nil {
				if ctx.Err() == nil {
					s.fail(fmt.Errorf("send: %w", err))
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
	}
}

// recvLoop reads and applies the peer's messages until ctx ends or one is
// bad.
func (s *setup) recvLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		b, err := s.sig.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.fail(fmt.Errorf("receive: %w", err))
			}
			return
		}
		s.desc.Lock()
		err = s.apply(b)
		s.desc.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				s.fail(err)
			}
			return
		}
	}
}

// apply handles one signalling message. Errors wrap ErrSignalling when the
// message is at fault.
func (s *setup) apply(b []byte) error {
	m, err := parseSignal(b)
	if err != nil {
		return err
	}
	switch m.Type {
	case typeOffer:
		if s.expert || s.haveRemote && !s.established {
			return fmt.Errorf("%w: unexpected offer", ErrSignalling)
		}
		if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
			return fmt.Errorf("%w: offer: %w", ErrSignalling, err)
		}
		if s.established {
			// An ICE restart: the peer's new credentials and candidates.
			s.log.Info("rtc: ICE restart offered by the peer")
			s.nCand = 0
			if s.onRestart != nil {
				s.onRestart()
			}
		}
		s.haveRemote = true
		if s.offered != nil {
			s.offeredOnce.Do(func() { close(s.offered) })
		}
		answer, err := s.pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("%w: answer: %w", ErrSignalling, err)
		}
		if s.established && s.pc.ICEGatheringState() == webrtc.ICEGatheringStateComplete {
			// The same offer again (its first answer was lost with the
			// signalling path): no new gathering, so no candidates will
			// trickle; send the ones we have inside the answer.
			if err := s.pc.SetLocalDescription(answer); err != nil {
				return fmt.Errorf("answer: %w", err)
			}
			if d := s.pc.LocalDescription(); d != nil {
				answer = *d
			}
			ab, err := signal{Type: typeAnswer, SDP: answer.SDP}.marshal()
			if err != nil {
				return fmt.Errorf("answer: %w", err)
			}
			s.enqueue(ab)
			return s.flushPending()
		}
		ab, err := signal{Type: typeAnswer, SDP: answer.SDP}.marshal()
		if err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		s.enqueue(ab)
		if err := s.pc.SetLocalDescription(answer); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		return s.flushPending()
	case typeAnswer:
		if !s.expert || s.answers >= s.offers {
			return fmt.Errorf("%w: unexpected answer", ErrSignalling)
		}
		s.answers++
		if s.answers < s.offers {
			// The answer to a restart offer we have since replaced.
			s.log.Debug("rtc: answer to an earlier restart offer ignored")
			return nil
		}
		if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return fmt.Errorf("%w: answer: %w", ErrSignalling, err)
		}
		if s.established {
			s.nCand = 0
		}
		s.haveRemote = true
		return s.flushPending()
	case typeCandidate:
		s.nCand++
		if s.nCand > maxRemoteCandidates {
			return fmt.Errorf("%w: more than %d candidates", ErrSignalling, maxRemoteCandidates)
		}
		s.hosts.addCandidate(m.Candidate)
		c := webrtc.ICECandidateInit{Candidate: m.Candidate, SDPMid: m.SDPMid, SDPMLineIndex: m.SDPMLineIndex}
		if !s.haveRemote {
			s.pending = append(s.pending, c)
			return nil
		}
		return s.addCandidate(c)
	case typeEnd:
		return nil
	}
	return fmt.Errorf("%w: unhandled type %q", ErrSignalling, m.Type)
}

func (s *setup) flushPending() error {
	for _, c := range s.pending {
		if err := s.addCandidate(c); err != nil {
			return err
		}
	}
	s.pending = nil
	return nil
}

func (s *setup) addCandidate(c webrtc.ICECandidateInit) error {
	if err := s.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: candidate: %w", ErrSignalling, err)
	}
	return nil
}

// wait waits for the data channel to open, then stops the signalling.
func (s *setup) wait(ctx context.Context) (_ datachannel.ReadWriteCloserDeadliner, err error) {
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	// A signalling channel that breaks (the server restarting) after the
	// descriptions went through need not stop ICE: remember the error and
	// keep waiting. A bad message is fatal.
	var sigBroken error
	// An expert sends its offer before anything else, at once: one who
	// pairs and sends candidates, or nothing, is holding the invitation.
	var offerLate <-chan time.Time
	if s.offered != nil {
		t := time.NewTimer(s.offerTimeout)
		defer t.Stop()
		offerLate = t.C
	}
	for {
		select {
		case <-s.offered:
			offerLate = nil
		case <-offerLate:
			select {
			case <-s.offered:
				offerLate = nil
				continue
			default:
			}
			return nil, &HandshakeError{Kind: ErrUnreachable, Stage: "signalling", Cause: errors.Join(fmt.Errorf("no offer from the expert within %v", s.offerTimeout), sigBroken)}
		case r := <-s.opened:
			if r.err != nil {
				return nil, &HandshakeError{Stage: "ice", Cause: fmt.Errorf("detach data channel: %w", r.err)}
			}
			return r.rw, nil
		case err := <-s.sigErr:
			if errors.Is(err, ErrSignalling) {
				return nil, &HandshakeError{Kind: ErrSignalling, Stage: "signalling", Cause: err}
			}
			s.log.Info("rtc: signalling broken", "err", err)
			sigBroken = err
		case <-s.failed:
			return nil, &HandshakeError{Kind: ErrUnreachable, Stage: "ice", Cause: errors.Join(errors.New("ICE or DTLS failed"), sigBroken)}
		case <-ctx.Done():
			return nil, &HandshakeError{Kind: ErrUnreachable, Stage: "ice", Cause: errors.Join(ctx.Err(), sigBroken)}
		}
	}
}
