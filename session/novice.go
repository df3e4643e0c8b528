package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/filetransfer"
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
	// Forbid: rights the organisation's policy does not let the expert
	// ask for (Config.Forbid).
	Forbid Rights
	Audit  func(Event)
	Logger *slog.Logger
	// HotKey, if set, watches the desktop's Esc key while the expert
	// controls it (x11.Display.WatchHotKey): isInjected tells the
	// expert's presses, which must reach applications, from the
	// novice's, on which onPress takes control back.
	HotKey func(isInjected func() bool, onPress func()) (stop func(), err error)
	// Via says how the expert reached this computer, in words for the
	// novice that follow "Connected " (see ViaDirect, ViaServer); every
	// question shows it. "" leaves the line out.
	Via string
	// AnswerTimeout is how long a question waits for the novice; then it
	// is a no (fail closed). Default DefaultAnswerTimeout.
	AnswerTimeout time.Duration
	// FilesDir is where files from the expert are saved (with the files
	// right); "" refuses them.
	FilesDir string
	// FileAudit, if set, receives the end of every file transfer
	// (completed with its SHA-256, refused, cancelled, failed or
	// interrupted), synchronously: the audit trail's files. Audit
	// receives the consent transitions.
	FileAudit func(filetransfer.Event)
	// DenyNote is added to the reason of a no to viewing (the novice's, or
	// an unanswered question's), which the expert reads: "; this invitation
	// is now closed" when this no is the invitation's last.
	DenyNote string
}

// DefaultAnswerTimeout is how long a question waits for an answer before
// it counts as a no.
const DefaultAnswerTimeout = time.Minute

// Warning is what every question tells the novice, against callers who
// pose as support staff.
const Warning = "Only allow someone you asked for help. Nobody from a company calls you first."

// Question is a decision only the novice can make: whether the expert
// may see the screen, or control it.
type Question struct {
	Right  Rights // RightView, RightControl, RightClipboard or RightFiles
	Expert string
	answer func(allow bool) error

	// Via says how the expert reached this computer (NoviceConfig.Via).
	Via string
	// Deadline is when the question counts as a no, Timeout after it was
	// asked.
	Deadline time.Time
	Timeout  time.Duration
}

// Text is the question as the novice reads it on a terminal: how the
// expert reached this computer, the warning, what no answer means, and
// last, next to the cursor, the question itself, on one line ending in
// "Allow? [y/N]" as before (scripts and tests wait for that line).
func (q Question) Text() string {
	var b strings.Builder
	if q.Via != "" {
		fmt.Fprintf(&b, "%s is connected %s.\n", q.Expert, q.Via)
	} else {
		fmt.Fprintf(&b, "%s is connected.\n", q.Expert)
	}
	b.WriteString("  " + Warning + "\n")
	if q.Timeout > 0 {
		fmt.Fprintf(&b, "  No answer in %s means no.\n", Duration(q.Timeout))
	}
	if q.Right == RightControl {
		fmt.Fprintf(&b, "%s asks to control your mouse and keyboard. Allow? [y/N]", q.Expert)
	} else if q.Right == RightFiles {
		fmt.Fprintf(&b, "%s asks to exchange files with you (files sent to you are saved in your download folder). Allow? [y/N]", q.Expert)
	} else if q.Right == RightClipboard {
		fmt.Fprintf(&b, "%s asks to share clipboards (copy and paste between your computers). Allow? [y/N]", q.Expert)
	} else {
		fmt.Fprintf(&b, "%s wants to see your screen. Allow? [y/N]", q.Expert)
	}
	return b.String()
}

// UnansweredReason is the audited reason of a question that waited d
// without an answer.
func UnansweredReason(d time.Duration) string { return "no answer within " + Duration(d) }

// Duration says d in words for the novice, rounded up to whole seconds:
// "1 minute", "2 minutes", "90 seconds", "1 second".
func Duration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if d >= time.Minute && d%time.Minute == 0 {
		return plural(int64(d/time.Minute), "minute")
	}
	return plural(int64((d+time.Second-1)/time.Second), "second")
}

// ViaDirect describes an expert who connected straight to this computer
// from addr: "on your local network (192.168.1.20)" for private, loopback
// and link-local addresses, else "from the internet (203.0.113.7)".
func ViaDirect(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.IsPrivate() || addr.IsLoopback() || addr.IsLinkLocalUnicast() {
		return "on your local network (" + addr.String() + ")"
	}
	return "from the internet (" + addr.String() + ")"
}

// ViaServer describes an expert who came through the rendezvous server,
// which saw them at from (an IP address, or "" when it did not say).
func ViaServer(from string) string {
	ip, err := netip.ParseAddr(from)
	if err != nil {
		return "through the server"
	}
	return "through the server from " + ip.Unmap().String()
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

	timeout  time.Duration // of each question (NoviceConfig.AnswerTimeout)
	via      string
	denyNote string
	// timers are the pending questions' deadlines, stopped at the end.
	timersMu sync.Mutex
	timers   map[*time.Timer]struct{}
	ended    bool

	files      *filetransfer.Endpoint
	fileEvents *eventQueue

	// peer is what the expert announced (Announce): none until it does.
	peerMu sync.Mutex
	peer   Feature
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
		timeout:   cfg.AnswerTimeout,
		via:       cfg.Via,
		denyNote:  cfg.DenyNote,
		timers:    make(map[*time.Timer]struct{}),
	}
	if n.timeout <= 0 {
		n.timeout = DefaultAnswerTimeout
	}
	n.consent = NewConsent(Config{Policy: cfg.Policy, Forbid: cfg.Forbid, Audit: cfg.Audit})
	n.gate = NewGate(n.consent, cfg.Input, cfg.Clipboard, log)
	if cfg.HotKey != nil {
		n.armHotKey(cfg.HotKey)
	}
	n.startFiles(cfg.FilesDir, cfg.FileAudit)
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
	n.wg.Go(func() { n.fileEvents.run(n.mux.Done()) })
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
		n.files.Close()
		cancelForward()
		n.stopTimers()
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
	q := Question{Right: right, Expert: n.consent.Expert(), Via: n.via,
		Timeout: n.timeout, Deadline: time.Now().Add(n.timeout)}
	// The first of the novice's answer and the deadline settles the
	// question; a late timer must not deny a later question of the same
	// kind.
	var once sync.Once
	var t *time.Timer
	decide := func(allow bool) error {
		switch {
		case right == RightView && allow:
			return n.consent.AllowView()
		case right == RightView:
			return n.consent.deny(RightView, "novice declined"+n.denyNote, false)
		case right == RightClipboard && allow:
			return n.consent.AllowClipboard()
		case right == RightClipboard:
			return n.consent.DenyClipboard()
		case right == RightFiles && allow:
			return n.consent.AllowFiles()
		case right == RightFiles:
			return n.consent.DenyFiles()
		case allow:
			return n.consent.AllowControl()
		default:
			return n.consent.DenyControl()
		}
	}
	q.answer = func(allow bool) error {
		err := errors.New("session: the question was already settled")
		once.Do(func() {
			n.stopTimer(t)
			err = decide(allow)
		})
		return err
	}
	t = n.startTimer(n.timeout, func() {
		once.Do(func() {
			reason := UnansweredReason(n.timeout)
			if right == RightView {
				reason += n.denyNote
			}
			if err := n.consent.deny(right, reason, true); err != nil {
				n.log.Debug("unanswered question already settled", "right", right, "err", err)
				return
			}
			n.log.Info("consent question unanswered: denied", "right", right, "after", n.timeout)
		})
	})
	select {
	case n.questions <- q:
	default:
		n.log.Warn("consent question not shown: too many pending", "right", right)
	}
}

// startTimer runs f after d unless the session is over or the timer is
// stopped first.
func (n *Novice) startTimer(d time.Duration, f func()) *time.Timer {
	n.timersMu.Lock()
	defer n.timersMu.Unlock()
	if n.ended {
		return nil
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		n.timersMu.Lock() // held while t is assigned
		delete(n.timers, t)
		n.timersMu.Unlock()
		f()
	})
	n.timers[t] = struct{}{}
	return t
}

func (n *Novice) stopTimer(t *time.Timer) {
	if t == nil {
		return
	}
	n.timersMu.Lock()
	defer n.timersMu.Unlock()
	t.Stop()
	delete(n.timers, t)
}

// stopTimers stops every pending question's deadline once the session
// is over.
func (n *Novice) stopTimers() {
	n.timersMu.Lock()
	defer n.timersMu.Unlock()
	n.ended = true
	for t := range n.timers {
		t.Stop()
	}
	clear(n.timers)
}

// forwardState tells the expert about every consent transition and ends
// the session's plumbing once consent has ended.
func (n *Novice) forwardState(events <-chan Event) {
	ctrl := n.mux.Channel(ChannelControl)
	// Our features go first, before any state update.
	if err := SendMessage(ctrl, Announce{Features: OurFeatures}); err != nil {
		n.log.Debug("features not announced", "err", err)
	}
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
	first := true
	for {
		m, err := ReceiveMessage(ctrl)
		if first && (err == nil || errors.Is(err, ErrUnknownMessage)) {
			// An expert that announces does so in its first message; a
			// later announcement changes nothing.
			first = false
			if a, ok := m.(Announce); ok {
				n.peerMu.Lock()
				n.peer = a.Features
				n.peerMu.Unlock()
				n.log.Debug("the expert's features", "features", a.Features)
				continue
			}
		}
		if errors.Is(err, ErrUnknownMessage) {
			n.log.Debug("control message of a newer version ignored", "err", err)
			continue
		}
		if err != nil {
			switch {
			case ctx.Err() != nil, errors.Is(err, net.ErrClosed):
			case n.mux.Err() != nil:
				// The mux closed its channels because the connection
				// died (its Done is closed before they wake): the same
				// words as the mux's own watcher, whichever runs first.
				n.consent.End("the connection to the expert was lost")
			default:
				n.consent.End("the expert's connection failed")
			}
			return
		}
		switch m := m.(type) {
		case Announce:
			n.log.Debug("late features message ignored", "features", m.Features)
		case Request:
			if m.Right == RightClipboard {
				if err := n.consent.RequestClipboard(); err != nil {
					n.log.Info("clipboard request ignored", "err", err)
					continue
				}
				n.ask(RightClipboard)
				continue
			}
			if m.Right == RightFiles {
				if err := n.consent.RequestFiles(); err != nil {
					n.log.Info("files request ignored", "err", err)
					continue
				}
				n.ask(RightFiles)
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
		case Release:
			// Only control can be given back (Release.validate).
			if err := n.consent.GiveBackControl(); err != nil {
				n.log.Info("control given back ignored", "err", err)
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
		if errors.Is(err, ErrUnknownMessage) {
			n.log.Debug("chat message of a newer version ignored", "err", err)
			continue
		}
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
			// What the stream learnt of the path, for whoever wonders
			// why the picture was slow (pace.go).
			ls := st.LinkStats()
			n.log.Info("display stream ended", "rtt", ls.RTT, "srtt", ls.SRTT, "rate_kbit_s", int(ls.Rate*8/1000),
				"window", ls.Window, "max_in_flight", ls.MaxInFlight, "paced", ls.Paced, "sent", ls.Sent)
		})
	}
}

// PeerFeatures is what the expert's program announced it implements;
// none until its announcement arrives (or if it never does).
func (n *Novice) PeerFeatures() Feature {
	n.peerMu.Lock()
	defer n.peerMu.Unlock()
	return n.peer
}

// needs fails with ErrNotSupported unless the expert announced f.
func (n *Novice) needs(f Feature, what string) error {
	if !n.PeerFeatures().Has(f) {
		return fmt.Errorf("%w: %s", ErrNotSupported, what)
	}
	return nil
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
