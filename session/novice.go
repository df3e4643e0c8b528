package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/shadow"
)

// NoviceConfig is what the novice's end of a session works with.
type NoviceConfig struct {
	Screen      *shadow.Screen
	Input       screen.Injector  // the real injector; the session wraps it in its Gate
	Clipboard   screen.Clipboard // the real clipboard; may be nil
	DesktopName string
	Policy      Policy
	Audit       func(Event)
	Logger      *slog.Logger
	// HotKey, if set, watches the desktop's Esc key while the expert
	// controls it (x11.Display.WatchHotKey): isInjected tells the
	// expert's presses, which must reach applications, from the
	// novice's, on which onPress takes control back.
	HotKey func(isInjected func() bool, onPress func()) (stop func(), err error)
}

// Question is a decision only the novice can make: whether the expert
// may see the screen, or control it.
type Question struct {
	Right  Rights // RightView, RightControl or RightClipboard
	Expert string
	answer func(allow bool) error
}

// Text is the question as the novice reads it.
func (q Question) Text() string {
	if q.Right == RightControl {
		return fmt.Sprintf("%s asks to control your mouse and keyboard. Allow? [y/N]", q.Expert)
	}
	if q.Right == RightClipboard {
		return fmt.Sprintf("%s asks to share clipboards (copy and paste between your computers). Allow? [y/N]", q.Expert)
	}
	return fmt.Sprintf("%s wants to see your screen. Allow? [y/N]", q.Expert)
}

// Answer records the novice's decision.
func (q Question) Answer(allow bool) error { return q.answer(allow) }

// Novice is the novice's end of one authenticated session: it owns the
// consent state, the gate in front of the desktop's input, and the
// connection's channels. The expert sees nothing until the novice allows
// viewing, and controls nothing unless control is allowed.
type Novice struct {
	consent   *Consent
	gate      *Gate
	mux       *Mux
	log       *slog.Logger
	questions chan Question
	events    <-chan Event
	chats     chan string
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	done      chan struct{}
	viewing   chan struct{} // closed once viewing is allowed
}

// StartNovice starts the session on conn, an authenticated connection
// from the expert named expert. The session ends when either side ends
// it, the connection drops, or ctx is done; Done is closed then.
func StartNovice(ctx context.Context, conn net.Conn, expert string, cfg NoviceConfig) (*Novice, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Novice{
		mux:       NewMux(conn, MuxOptions{}),
		log:       log,
		questions: make(chan Question, 4),
		chats:     make(chan string, 64),
		cancel:    cancel,
		done:      make(chan struct{}),
		viewing:   make(chan struct{}),
	}
	n.consent = NewConsent(Config{Policy: cfg.Policy, Audit: cfg.Audit})
	n.gate = NewGate(n.consent, cfg.Input, cfg.Clipboard, log)
	if cfg.HotKey != nil {
		n.armHotKey(cfg.HotKey)
	}
	n.events, _ = n.consent.Subscribe() // closed after Ended
	forward, cancelForward := n.consent.Subscribe()

	// The desktop's clipboard reaches the expert only with the clipboard
	// right, and only text copied while it was held.
	srv := &rfb.Server{Screen: cfg.Screen, Input: n.gate, Clipboard: n.gate, ClipboardOut: n.consent.ClipboardOut,
		Name: cfg.DesktopName, Logger: log}

	n.wg.Go(func() { n.forwardState(forward) })
	n.wg.Go(func() { n.readControl(ctx) })
	n.wg.Go(func() { n.readChat() })
	n.wg.Go(func() { n.serveDisplays(ctx, srv) })
	n.wg.Go(func() {
		select {
		case <-ctx.Done():
			n.consent.End("the assistance agent stopped")
		case <-n.mux.Done():
			n.consent.End("the connection to the expert was lost")
		}
	})
	go func() {
		n.wg.Wait()
		cancelForward()
		close(n.done)
	}()

	if err := n.consent.ExpertAuthenticated(expert); err != nil {
		n.End("the expert's name was refused")
		return nil, err
	}
	if n.consent.State() == Asking {
		n.ask(RightView)
	}
	return n, nil
}

func (n *Novice) ask(right Rights) {
	q := Question{Right: right, Expert: n.consent.Expert()}
	q.answer = func(allow bool) error {
		switch {
		case right == RightView && allow:
			return n.consent.AllowView()
		case right == RightView:
			return n.consent.DenyView()
		case right == RightClipboard && allow:
			return n.consent.AllowClipboard()
		case right == RightClipboard:
			return n.consent.DenyClipboard()
		case allow:
			return n.consent.AllowControl()
		default:
			return n.consent.DenyControl()
		}
	}
	select {
	case n.questions <- q:
	default:
		n.log.Warn("consent question not shown: too many pending", "right", right)
	}
}

// forwardState tells the expert about every consent transition and ends
// the session's plumbing once consent has ended.
func (n *Novice) forwardState(events <-chan Event) {
	ctrl := n.mux.Channel(ChannelControl)
	for ev := range events {
		if ev.Rights.Has(RightView) {
			n.markViewing()
		}
		if err := SendMessage(ctrl, StateUpdateOf(ev)); err != nil {
			n.log.Debug("state update not sent", "err", err)
		}
		if ev.To == Ended {
			SendMessage(ctrl, End{Reason: ev.Reason})
			n.mux.Close()
			n.cancel()
			return
		}
	}
}

func (n *Novice) markViewing() {
	select {
	case <-n.viewing:
	default:
		close(n.viewing)
	}
}

func (n *Novice) readControl(ctx context.Context) {
	ctrl := n.mux.Channel(ChannelControl)
	for {
		m, err := ReceiveMessage(ctrl)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				n.consent.End("the expert's connection failed")
			}
			return
		}
		switch m := m.(type) {
		case Request:
			if m.Right == RightClipboard {
				if err := n.consent.RequestClipboard(); err != nil {
					n.log.Info("clipboard request ignored", "err", err)
					continue
				}
				n.ask(RightClipboard)
				continue
			}
			if m.Right != RightControl {
				n.log.Info("expert asked for an unsupported right", "right", m.Right)
				continue
			}
			if err := n.consent.RequestControl(); err != nil {
				n.log.Info("control request ignored", "err", err)
				continue
			}
			if n.consent.State() == ControlAsked {
				n.ask(RightControl)
			}
		case End:
			n.consent.End("the expert left the session")
			return
		default:
			n.log.Warn("unexpected control message from the expert; ending the session", "type", fmt.Sprintf("%T", m))
			n.consent.End("the expert's program broke the protocol")
			return
		}
	}
}

func (n *Novice) readChat() {
	chat := n.mux.Channel(ChannelChat)
	for {
		m, err := ReceiveMessage(chat)
		if err != nil {
			return
		}
		c, ok := m.(Chat)
		if !ok {
			n.consent.End("the expert's program broke the protocol")
			return
		}
		select {
		case n.chats <- c.Text:
		default:
			n.log.Warn("chat message dropped: too many unread")
		}
	}
}

// serveDisplays serves the RFB desktop on every display stream the
// expert opens, once (and only once) the novice has allowed viewing.
func (n *Novice) serveDisplays(ctx context.Context, srv *rfb.Server) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := n.mux.Accept(ctx)
		if err != nil {
			return
		}
		wg.Go(func() {
			defer st.Close()
			select {
			case <-n.viewing:
			case <-ctx.Done():
				return
			}
			if n.consent.State() == Ended {
				return
			}
			srv.ServeConn(ctx, st)
		})
	}
}

// Questions delivers what the novice must decide.
func (n *Novice) Questions() <-chan Question { return n.questions }

// Events delivers every consent transition, in order; it is closed after
// the session ended.
func (n *Novice) Events() <-chan Event { return n.events }

// Chats delivers the expert's chat messages.
func (n *Novice) Chats() <-chan string { return n.chats }

// State is the session's consent state.
func (n *Novice) State() State { return n.consent.State() }

// SetClipboard shares the clipboard with the expert or stops sharing it
// (the novice's toggle); see Consent.SetClipboard.
func (n *Novice) SetClipboard(allow bool) error { return n.consent.SetClipboard(allow) }

// Clipboard reports whether the novice shares the clipboard.
func (n *Novice) Clipboard() bool { return n.consent.Clipboard() }

// ClipboardAsked reports whether a clipboard question waits for an answer.
func (n *Novice) ClipboardAsked() bool { return n.consent.ClipboardAsked() }

// TakeBack returns control to the novice at once.
func (n *Novice) TakeBack() error { return n.consent.TakeBackControl() }

// End ends the session.
func (n *Novice) End(reason string) error { return n.consent.End(reason) }

// SendChat sends a chat message to the expert.
func (n *Novice) SendChat(text string) error {
	return SendMessage(n.mux.Channel(ChannelChat), Chat{Text: text})
}

// Dropped counts input the gate refused.
func (n *Novice) Dropped() Drops { return n.gate.Dropped() }

// Done is closed when the session is over and its goroutines are gone.
func (n *Novice) Done() <-chan struct{} { return n.done }

// xkEscape is the keysym of the novice's hot key.
const xkEscape = 0xff1b

// armHotKey watches Esc exactly while the state is Controlling. It runs
// as a consent guard, so the key is armed before the expert hears they
// have control, and disarmed before TakeBackControl or End returns.
func (n *Novice) armHotKey(watch func(isInjected func() bool, onPress func()) (func(), error)) {
	isInjected := n.gate.InjectedPresses(xkEscape)
	onPress := func() {
		if err := n.consent.TakeBackControl(); err != nil {
			n.log.Debug("Esc pressed but control was not the expert's", "err", err)
		}
	}
	var stop func() // guarded by the consent's lock
	n.consent.guard(func(ev Event) {
		switch {
		case ev.To == Controlling && stop == nil:
			s, err := watch(isInjected, onPress)
			if err != nil {
				n.log.Warn("the Esc key cannot take control back; use the console", "err", err)
				return
			}
			stop = s
		case ev.To != Controlling && stop != nil:
			stop()
			stop = nil
		}
	})
}
