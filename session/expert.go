package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/assist-project/assist/filetransfer"
)

// ExpertEvent is news from the novice's side: a consent state change, a
// chat message, or the end of the session.
type ExpertEvent struct {
	State  State  // for state changes and the end
	Rights Rights // for state changes
	Reason string // why the state changed or the session ended
	Chat   string // set for chat messages
	IsChat bool
}

// Expert is the expert's end of one authenticated session. Every display
// stream it opens is a separate RFB session with the novice's desktop, so
// several local viewers (a VNC viewer, the browser) can watch at once.
type Expert struct {
	mux    *Mux
	log    *slog.Logger
	events chan ExpertEvent
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	state  State
	reason string
	rights Rights
	// peer is what the novice announced (Announce): none until it does.
	peer Feature
	// announced is closed once our own Announce is on its way; peerKnown
	// once the novice's first control message arrived: a novice that
	// announces does so first, so from then on peer is what it has.
	announced chan struct{}
	peerKnown chan struct{}
	audit     func(ExpertEvent)
	// closed is set when events is closed: a Leave that records the end
	// just as the connection drops must not send on it.
	closed bool

	files      *filetransfer.Endpoint
	fileEvents *eventQueue
	offers     chan filetransfer.Offer
}

// StartExpert starts the expert's end on conn, an authenticated
// connection to the novice.
func StartExpert(conn net.Conn, log *slog.Logger) *Expert {
	return StartExpertConfig(conn, log, ExpertConfig{})
}

// StartExpertConfig starts the expert's end on conn with cfg.
func StartExpertConfig(conn net.Conn, log *slog.Logger, cfg ExpertConfig) *Expert {
	if log == nil {
		log = slog.Default()
	}
	e := &Expert{
		mux:       NewMux(conn, MuxOptions{Opener: true}),
		log:       log,
		events:    make(chan ExpertEvent, 256),
		done:      make(chan struct{}),
		announced: make(chan struct{}),
		peerKnown: make(chan struct{}),
		state:     Asking,
		audit:     cfg.Audit,
	}
	e.startFiles(cfg)
	// Our features go first on the control channel: every other control
	// message waits for them (control). A write returns once the batch
	// reached the connection, so this cannot run in StartExpert itself.
	e.wg.Go(func() {
		defer close(e.announced)
		if err := SendMessage(e.mux.Channel(ChannelControl), Announce{Features: OurFeatures}); err != nil {
			log.Debug("features not announced", "err", err)
		}
	})
	e.wg.Go(e.readControl)
	e.wg.Go(e.readChat)
	e.wg.Go(func() { e.fileEvents.run(e.mux.Done()) })
	go func() {
		e.wg.Wait()
		e.mux.Close()
		e.files.Close()
		e.mu.Lock()
		e.closed = true
		close(e.events)
		e.mu.Unlock()
		close(e.done)
	}()
	return e
}

func (e *Expert) emit(ev ExpertEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	select {
	case e.events <- ev:
	default:
		e.log.Warn("session event dropped: too many unread")
	}
}

func (e *Expert) readControl() {
	ctrl := e.mux.Channel(ChannelControl)
	first := true
	for {
		m, err := ReceiveMessage(ctrl)
		if first && (err == nil || errors.Is(err, ErrUnknownMessage)) {
			first = false
			if a, ok := m.(Announce); ok {
				e.mu.Lock()
				e.peer = a.Features
				e.mu.Unlock()
				e.log.Debug("the novice's features", "features", a.Features)
			}
			close(e.peerKnown)
			if _, ok := m.(Announce); ok {
				continue
			}
		}
		if errors.Is(err, ErrUnknownMessage) {
			e.log.Debug("control message of a newer version ignored", "err", err)
			continue
		}
		if err != nil {
			e.finish("the connection to the novice was lost")
			return
		}
		switch m := m.(type) {
		case Announce:
			// Only as the first message: a later one changes nothing.
			e.log.Debug("late features message ignored", "features", m.Features)
		case StateUpdate:
			ev := ExpertEvent{State: m.State, Rights: m.Rights, Reason: m.Reason}
			e.mu.Lock()
			ended := e.state == Ended
			e.state, e.reason, e.rights = m.State, m.Reason, m.Rights
			if e.audit != nil && !ended {
				e.audit(ev)
			}
			e.mu.Unlock()
			e.emit(ev)
			if m.State == Ended {
				e.finish(m.Reason)
				return
			}
		case End:
			e.finish(m.Reason)
			return
		default:
			e.log.Warn("unexpected control message from the novice", "type", fmt.Sprintf("%T", m))
		}
	}
}

// finish records the end (once) and closes the connection.
func (e *Expert) finish(reason string) {
	e.mu.Lock()
	already := e.state == Ended
	if !already {
		e.state, e.reason = Ended, reason
		if e.audit != nil {
			e.audit(ExpertEvent{State: Ended, Reason: reason})
		}
	}
	e.mu.Unlock()
	if !already {
		e.emit(ExpertEvent{State: Ended, Reason: reason})
	}
	e.mux.Close()
}

func (e *Expert) readChat() {
	chat := e.mux.Channel(ChannelChat)
	for {
		m, err := ReceiveMessage(chat)
		if errors.Is(err, ErrUnknownMessage) {
			e.log.Debug("chat message of a newer version ignored", "err", err)
			continue
		}
		if err != nil {
			return
		}
		if c, ok := m.(Chat); ok {
			e.emit(ExpertEvent{Chat: c.Text, IsChat: true})
		}
	}
}

// State is the session's state as the novice last reported it, and the
// reason given.
func (e *Expert) State() (State, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state, e.reason
}

// OpenDisplay opens a new RFB stream to the novice's desktop. The novice's
// RFB server answers once the novice has allowed viewing.
func (e *Expert) OpenDisplay(ctx context.Context) (net.Conn, error) {
	ch, err := e.mux.Open(ctx)
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// RequestControl asks the novice for control of mouse and keyboard.
func (e *Expert) RequestControl(ctx context.Context) error {
	if st, _ := e.State(); st == Ended {
		return errors.New("session: the session has ended")
	}
	return e.control(Request{Right: RightControl})
}

// PeerFeatures is what the novice's program announced it implements;
// none until its announcement arrives (or if it never does).
func (e *Expert) PeerFeatures() Feature {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peer
}

// control sends m on the control channel, after our Announce.
func (e *Expert) control(m Message) error {
	select {
	case <-e.announced:
	case <-e.mux.Done():
	}
	return SendMessage(e.mux.Channel(ChannelControl), m)
}

// needs fails with ErrNotSupported unless the novice announced f. It
// waits for the novice's first control message, which is its Announce
// if it has one.
func (e *Expert) needs(ctx context.Context, f Feature, what string) error {
	select {
	case <-e.peerKnown:
	case <-e.mux.Done():
		return errors.New("session: the session has ended")
	case <-ctx.Done():
		return ctx.Err()
	}
	if !e.PeerFeatures().Has(f) {
		return fmt.Errorf("%w: %s", ErrNotSupported, what)
	}
	return nil
}

// GiveBackControl hands control of mouse and keyboard back to the novice;
// the expert goes on viewing. A novice whose program does not announce
// FeatureRelease is not sent it (ErrNotSupported).
func (e *Expert) GiveBackControl(ctx context.Context) error {
	if st, _ := e.State(); st == Ended {
		return errors.New("session: the session has ended")
	}
	if err := e.needs(ctx, FeatureRelease, "the other computer's Assist cannot be given control back: ask them to take it back (Esc), or to update Assist"); err != nil {
		return err
	}
	return e.control(Release{Right: RightControl})
}

// RequestClipboard asks the novice to share clipboards: with the right,
// text copied on either side can be pasted on the other.
func (e *Expert) RequestClipboard(ctx context.Context) error {
	if st, _ := e.State(); st == Ended {
		return errors.New("session: the session has ended")
	}
	return e.control(Request{Right: RightClipboard})
}

// SendChat sends a chat message to the novice.
func (e *Expert) SendChat(ctx context.Context, text string) error {
	return SendMessage(e.mux.Channel(ChannelChat), Chat{Text: text})
}

// Leave ends the session from the expert's side.
func (e *Expert) Leave(reason string) {
	e.control(End{Reason: reason})
	e.finish(reason)
}

// Events delivers state changes, chat and the end; it is closed once
// the session is over.
func (e *Expert) Events() <-chan ExpertEvent { return e.events }

// Done is closed when the session is over.
func (e *Expert) Done() <-chan struct{} { return e.done }
