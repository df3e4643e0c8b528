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
	audit  func(ExpertEvent)
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
		mux:    NewMux(conn, MuxOptions{Opener: true}),
		log:    log,
		events: make(chan ExpertEvent, 256),
		done:   make(chan struct{}),
		state:  Asking,
		audit:  cfg.Audit,
	}
	e.startFiles(cfg.FilesDir, cfg.FileAudit)
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
	for {
		m, err := ReceiveMessage(ctrl)
		if err != nil {
			e.finish("the connection to the novice was lost")
			return
		}
		switch m := m.(type) {
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
	return SendMessage(e.mux.Channel(ChannelControl), Request{Right: RightControl})
}

// GiveBackControl hands control of mouse and keyboard back to the novice;
// the expert goes on viewing.
func (e *Expert) GiveBackControl(ctx context.Context) error {
	if st, _ := e.State(); st == Ended {
		return errors.New("session: the session has ended")
	}
	return SendMessage(e.mux.Channel(ChannelControl), Release{Right: RightControl})
}

// RequestClipboard asks the novice to share clipboards: with the right,
// text copied on either side can be pasted on the other.
func (e *Expert) RequestClipboard(ctx context.Context) error {
	if st, _ := e.State(); st == Ended {
		return errors.New("session: the session has ended")
	}
	return SendMessage(e.mux.Channel(ChannelControl), Request{Right: RightClipboard})
}

// SendChat sends a chat message to the novice.
func (e *Expert) SendChat(ctx context.Context, text string) error {
	return SendMessage(e.mux.Channel(ChannelChat), Chat{Text: text})
}

// Leave ends the session from the expert's side.
func (e *Expert) Leave(reason string) {
	SendMessage(e.mux.Channel(ChannelControl), End{Reason: reason})
	e.finish(reason)
}

// Events delivers state changes, chat and the end; it is closed once
// the session is over.
func (e *Expert) Events() <-chan ExpertEvent { return e.events }

// Done is closed when the session is over.
func (e *Expert) Done() <-chan struct{} { return e.done }
