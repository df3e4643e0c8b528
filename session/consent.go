// Package session runs one assistance session between the novice and an
// expert: the novice's consent (Consent), the gate that is the only path
// from the network to the desktop's input (Gate), and the display,
// control and chat channels carried over one connection (Mux).
package session

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// State is where a session stands in the novice's consent.
type State uint8

// The states of a session, in the order a session normally walks them.
const (
	// Waiting: no expert has authenticated yet.
	Waiting State = iota
	// Asking: an authenticated expert wants to see the screen and the
	// novice has not answered.
	Asking
	// Viewing: the expert sees the screen; input is dropped.
	Viewing
	// ControlAsked: the expert asked for control; the novice has not
	// answered. The expert still only views.
	ControlAsked
	// Controlling: the expert's pointer and keys reach the desktop.
	Controlling
	// Ended: the session is over; nothing leaves this state.
	Ended
)

var stateNames = [...]string{"waiting", "asking", "viewing", "control-asked", "controlling", "ended"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText encodes s by name, so the wire format does not depend on
// the order of the constants.
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("session: invalid state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText accepts exactly the names String returns.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if string(b) == n {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("session: unknown state %q", truncate(string(b), 32))
}

// Rights is a set of what the expert may do. They are separate, as in
// RustDesk and MeshCentral: seeing the screen does not imply typing, and
// typing does not imply reaching the clipboard.
type Rights uint8

// The rights an expert can hold.
const (
	RightView Rights = 1 << iota
	RightControl
	RightClipboard
	// RightFiles lets the expert send files to the novice's download
	// folder and receive the files the novice sends (package
	// filetransfer). Like the clipboard it is asked, toggled, and
	// effective only while the expert can view.
	RightFiles
)

// Has reports whether every right in q is in r.
func (r Rights) Has(q Rights) bool { return r&q == q }

func (r Rights) String() string {
	var parts []string
	for _, n := range rightNames {
		if r&n.r != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

var rightNames = []struct {
	r    Rights
	name string
}{{RightView, "view"}, {RightControl, "control"}, {RightClipboard, "clipboard"}, {RightFiles, "files"}}

// Policy answers the novice's questions in advance (`--allow`).
type Policy uint8

// The policies, from the most to the least cautious.
const (
	// PolicyAsk asks the novice before the expert sees or controls.
	PolicyAsk Policy = iota
	// PolicyView lets an authenticated expert see the screen at once;
	// control is still asked.
	PolicyView
	// PolicyControl also grants control whenever the expert asks for
	// it, until the novice takes control back once (see TakeBackControl).
	PolicyControl
)

func (p Policy) String() string {
	switch p {
	case PolicyAsk:
		return "ask"
	case PolicyView:
		return "view"
	case PolicyControl:
		return "control"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParsePolicy reads the value of `--allow`: ask, view or control.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "ask":
		return PolicyAsk, nil
	case "view":
		return PolicyView, nil
	case "control":
		return PolicyControl, nil
	}
	return 0, fmt.Errorf("session: --allow %q: want ask, view or control", s)
}

// Action names what caused a transition.
type Action string

// The actions the consent state machine accepts.
const (
	ActAuthenticated  Action = "expert-authenticated"
	ActAllowView      Action = "allow-view"
	ActDenyView       Action = "deny-view"
	ActRequestControl Action = "request-control"
	ActAllowControl   Action = "allow-control"
	ActDenyControl    Action = "deny-control"
	ActTakeBack       Action = "take-back-control"
	ActGiveBack       Action = "give-back-control"
	ActClipboard      Action = "clipboard"
	ActEnd            Action = "end"
)

// The expert asking to share clipboards, and the novice's answer.
const (
	ActRequestClipboard Action = "request-clipboard"
	ActAllowClipboard   Action = "allow-clipboard"
	ActDenyClipboard    Action = "deny-clipboard"
)

// The files right: the novice's toggle, the expert asking, and the
// novice's answer.
const (
	ActFiles        Action = "files"
	ActRequestFiles Action = "request-files"
	ActAllowFiles   Action = "allow-files"
	ActDenyFiles    Action = "deny-files"
)

// Event is one transition: what the audit trail records and what
// subscribers receive.
type Event struct {
	// Seq numbers the transitions of one Consent from 1, with no gaps.
	Seq    uint64
	Time   time.Time
	Action Action
	From   State
	To     State
	// Rights are the expert's rights after the transition.
	Rights Rights
	// Expert is the authenticated expert's display name ("" before).
	Expert string
	// Reason says why, in words fit for the novice and the audit log.
	Reason string
	// Auto is set when the policy answered instead of the novice.
	Auto bool
}

// ForbiddenReason is the audited reason of a request that Config.Forbid
// refused.
const ForbiddenReason = "the organisation's policy does not allow this"

// ErrInvalidTransition is wrapped by every error a Consent returns for an
// action that its current state does not allow.
var ErrInvalidTransition = errors.New("invalid consent transition")

// Config sets up a Consent.
type Config struct {
	// Policy answers the novice's questions in advance.
	Policy Policy
	// Clipboard grants the clipboard right from the start; it is
	// effective only while the expert can view.
	Clipboard bool
	// Forbid lists the rights an organisation's policy does not let its
	// helpers ask for at all (control, clipboard, files): a request for
	// one is refused at once (audited as an automatic no with
	// ForbiddenReason), the novice's toggles cannot grant it, and neither
	// Policy nor Clipboard does.
	Forbid Rights
	// Audit receives every transition, in order, synchronously and with
	// the Consent locked, so the trail is exactly the order of events.
	// It must not call the Consent back. Attempted invalid transitions
	// are not audited; their errors go to the caller.
	Audit func(Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Consent is the novice's consent for one session: the only owner of the
// session's state and of the expert's rights. It is safe for concurrent
// use. Every method that changes something either makes exactly the
// documented transition or returns an error wrapping
// ErrInvalidTransition and changes nothing.
type Consent struct {
	cfg Config

	// rights mirrors the current rights for lock-free reads by the
	// gate; it is only stored with mu held.
	rights atomic.Uint32

	mu        sync.Mutex
	state     State
	clipboard bool
	// clipAsked: the expert asked for the clipboard right and the
	// novice has not answered.
	clipAsked bool
	// clipSince is when the expert last gained the clipboard right
	// (time.Now, like the capture loop's stamps); see ClipboardOut.
	clipSince time.Time
	// files and filesAsked are the files right and its pending question,
	// as clipboard and clipAsked.
	files      bool
	filesAsked bool
	// controlPolicy is cleared by a take-back: once the novice has
	// pressed Esc, an expert whose viewer asks again must be asked.
	controlPolicy bool
	expert        string
	seq           uint64
	subs          map[*subscriber]struct{}
	guards        []func(Event)
}

// NewConsent returns a Consent in state Waiting.
func NewConsent(cfg Config) *Consent {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Consent{
		cfg:           cfg,
		clipboard:     cfg.Clipboard && !cfg.Forbid.Has(RightClipboard),
		controlPolicy: cfg.Policy == PolicyControl && !cfg.Forbid.Has(RightControl),
		subs:          make(map[*subscriber]struct{}),
	}
}

// State returns the current state.
func (c *Consent) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Rights returns the expert's current rights. It never blocks: the gate
// calls it for every input event.
func (c *Consent) Rights() Rights { return Rights(c.rights.Load()) }

// Expert returns the authenticated expert's name, or "".
func (c *Consent) Expert() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expert
}

// MaxExpertName bounds the expert's display name, which comes from the
// network and ends up in the audit trail and on the novice's screen.
const MaxExpertName = 64

// ExpertAuthenticated records that an expert passed authentication:
// Waiting -> Asking, and on to Viewing at once if the policy allows view.
func (c *Consent) ExpertAuthenticated(name string) error {
	if err := checkText(name, MaxExpertName, false); err != nil || name == "" {
		if err == nil {
			err = errors.New("empty")
		}
		return fmt.Errorf("session: consent: expert name: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(ActAuthenticated, Waiting); err != nil {
		return err
	}
	c.expert = name
	c.move(ActAuthenticated, Asking, "expert "+name+" authenticated", false)
	if c.cfg.Policy >= PolicyView {
		c.move(ActAllowView, Viewing, "allowed in advance (--allow "+c.cfg.Policy.String()+")", true)
	}
	return nil
}

// AllowView is the novice accepting to be seen: Asking -> Viewing.
func (c *Consent) AllowView() error {
	return c.step(ActAllowView, Asking, Viewing, "novice allowed viewing", false)
}

// DenyView is the novice declining: Asking -> Ended.
func (c *Consent) DenyView() error {
	return c.deny(RightView, "novice declined", false)
}

// deny is a no to the question for right (RightView: Asking -> Ended;
// RightControl: ControlAsked -> Viewing), the transition of DenyView and
// DenyControl, audited with reason. auto marks a question nobody answered
// in time, taken as a no (fail closed): the novice did not decide.
func (c *Consent) deny(right Rights, reason string, auto bool) error {
	if right == RightClipboard {
		return c.answerClipboard(ActDenyClipboard, false, reason, auto)
	}
	if right == RightFiles {
		return c.answerFiles(ActDenyFiles, false, reason, auto)
	}
	if right == RightControl {
		return c.step(ActDenyControl, ControlAsked, Viewing, reason, auto)
	}
	return c.step(ActDenyView, Asking, Ended, reason, auto)
}

// RequestControl is the expert asking for control: Viewing ->
// ControlAsked, and on to Controlling at once under PolicyControl (until
// the first take-back).
func (c *Consent) RequestControl() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(ActRequestControl, Viewing); err != nil {
		return err
	}
	c.move(ActRequestControl, ControlAsked, "expert asked for control", false)
	if c.cfg.Forbid.Has(RightControl) {
		c.move(ActDenyControl, Viewing, ForbiddenReason, true)
		return nil
	}
	if c.controlPolicy {
		c.move(ActAllowControl, Controlling, "allowed in advance (--allow control)", true)
	}
	return nil
}

// AllowControl is the novice granting control: ControlAsked -> Controlling.
func (c *Consent) AllowControl() error {
	return c.step(ActAllowControl, ControlAsked, Controlling, "novice allowed control", false)
}

// DenyControl is the novice refusing control: ControlAsked -> Viewing.
func (c *Consent) DenyControl() error {
	return c.deny(RightControl, "novice refused control", false)
}

// TakeBackControl is the novice pressing Esc: Controlling -> Viewing.
// When it returns, no input event from the expert reaches the desktop any
// more and the keys and buttons the expert held are released (see Gate).
// It also disarms PolicyControl for the rest of the session.
func (c *Consent) TakeBackControl() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(ActTakeBack, Controlling); err != nil {
		return err
	}
	c.controlPolicy = false
	c.move(ActTakeBack, Viewing, "novice took control back", false)
	return nil
}

// GiveBackControl is the expert handing control back of their own accord
// ("Give back control"): Controlling -> Viewing, with the same release of
// held keys and buttons as TakeBackControl. An --allow control policy
// stays armed: the novice did not take anything back.
func (c *Consent) GiveBackControl() error {
	return c.step(ActGiveBack, Controlling, Viewing, "the expert gave control back", false)
}

// SetClipboard grants or revokes the clipboard right (the novice's
// toggle). It is valid in any state but Ended, and effective only while
// the expert can view. It settles a pending clipboard question. Setting
// the value it already has is a no-op that records nothing.
func (c *Consent) SetClipboard(allow bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Ended || allow && c.cfg.Forbid.Has(RightClipboard) {
		return c.invalid(ActClipboard)
	}
	c.clipAsked = false
	if c.clipboard == allow {
		return nil
	}
	c.clipboard = allow
	reason := "novice revoked the clipboard"
	if allow {
		reason = "novice shared the clipboard"
	}
	c.move(ActClipboard, c.state, reason, false)
	return nil
}

// RequestClipboard is the expert asking to share clipboards. It is valid
// while the expert views, does not hold the right and has no question
// pending; the state does not change, and the novice is to be asked
// (ClipboardAsked). The --allow policy never answers it.
func (c *Consent) RequestClipboard() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !rightsOf(c.state, 0).Has(RightView) || c.clipboard || c.clipAsked {
		return c.invalid(ActRequestClipboard)
	}
	c.clipAsked = true
	c.move(ActRequestClipboard, c.state, "expert asked to share clipboards", false)
	if c.cfg.Forbid.Has(RightClipboard) {
		c.clipAsked = false
		c.move(ActDenyClipboard, c.state, ForbiddenReason, true)
	}
	return nil
}

// ClipboardAsked reports whether a clipboard question waits for the
// novice.
func (c *Consent) ClipboardAsked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clipAsked
}

// Clipboard reports whether the novice shares the clipboard (effective
// only while the expert views: see Rights).
func (c *Consent) Clipboard() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clipboard
}

// AllowClipboard is the novice answering yes to RequestClipboard.
func (c *Consent) AllowClipboard() error {
	return c.answerClipboard(ActAllowClipboard, true, "novice shared the clipboard", false)
}

// DenyClipboard is the novice answering no to RequestClipboard.
func (c *Consent) DenyClipboard() error {
	return c.deny(RightClipboard, "novice refused to share the clipboard", false)
}

func (c *Consent) answerClipboard(a Action, allow bool, reason string, auto bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.clipAsked || c.state == Ended {
		return c.invalid(a)
	}
	c.clipAsked = false
	c.clipboard = allow
	c.move(a, c.state, reason, auto)
	return nil
}

// SetFiles grants or revokes the files right (the novice's toggle), as
// SetClipboard does for the clipboard: valid in any state but Ended,
// effective only while the expert can view, and it settles a pending
// files question.
func (c *Consent) SetFiles(allow bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Ended || allow && c.cfg.Forbid.Has(RightFiles) {
		return c.invalid(ActFiles)
	}
	c.filesAsked = false
	if c.files == allow {
		return nil
	}
	c.files = allow
	reason := "novice stopped file transfers"
	if allow {
		reason = "novice allowed file transfers"
	}
	c.move(ActFiles, c.state, reason, false)
	return nil
}

// RequestFiles is the expert asking to exchange files. Like
// RequestClipboard it is valid while the expert views, does not hold the
// right and has no question pending, and the --allow policy never
// answers it.
func (c *Consent) RequestFiles() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !rightsOf(c.state, 0).Has(RightView) || c.files || c.filesAsked {
		return c.invalid(ActRequestFiles)
	}
	c.filesAsked = true
	c.move(ActRequestFiles, c.state, "expert asked to exchange files", false)
	if c.cfg.Forbid.Has(RightFiles) {
		c.filesAsked = false
		c.move(ActDenyFiles, c.state, ForbiddenReason, true)
	}
	return nil
}

// FilesAsked reports whether a files question waits for the novice.
func (c *Consent) FilesAsked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filesAsked
}

// Files reports whether the novice allows file transfers (effective only
// while the expert views: see Rights).
func (c *Consent) Files() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files
}

// AllowFiles is the novice answering yes to RequestFiles.
func (c *Consent) AllowFiles() error {
	return c.answerFiles(ActAllowFiles, true, "novice allowed file transfers", false)
}

// DenyFiles is the novice answering no to RequestFiles.
func (c *Consent) DenyFiles() error {
	return c.deny(RightFiles, "novice refused file transfers", false)
}

func (c *Consent) answerFiles(a Action, allow bool, reason string, auto bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.filesAsked || c.state == Ended {
		return c.invalid(a)
	}
	c.filesAsked = false
	c.files = allow
	c.move(a, c.state, reason, auto)
	return nil
}

// ClipboardOut reports whether text that appeared on the desktop's
// clipboard at changed may go to the expert: the expert holds the
// clipboard right now and has held it, without a break, since before
// changed. Text copied while the right was off is therefore never sent,
// not even once the right is granted (rfb.Server.ClipboardOut).
func (c *Consent) ClipboardOut(changed time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Rights(c.rights.Load()).Has(RightClipboard) && !changed.Before(c.clipSince)
}

// MaxReason bounds a reason given to End; longer ones are cut.
const MaxReason = 256

// End ends the session from any state but Ended: the novice stopped, the
// expert left, the invitation expired, the connection failed.
func (c *Consent) End(reason string) error {
	reason = sanitize(reason, MaxReason)
	if reason == "" {
		reason = "ended"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Ended {
		return c.invalid(ActEnd)
	}
	c.move(ActEnd, Ended, reason, false)
	return nil
}

func (c *Consent) step(a Action, from, to State, reason string, auto bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(a, from); err != nil {
		return err
	}
	c.move(a, to, reason, auto)
	return nil
}

func (c *Consent) check(a Action, want State) error {
	if c.state != want {
		return c.invalid(a)
	}
	return nil
}

func (c *Consent) invalid(a Action) error {
	return fmt.Errorf("session: consent: %s in state %s: %w", a, c.state, ErrInvalidTransition)
}

// move makes a transition with mu held: state and rights first, then the
// gates (so input stops before anyone hears of it), the audit trail, and
// the subscribers' queues.
func (c *Consent) move(a Action, to State, reason string, auto bool) {
	from := c.state
	c.state = to
	if to == Ended {
		c.clipboard, c.clipAsked = false, false
		c.files, c.filesAsked = false, false
	}
	var extra Rights
	if c.clipboard {
		extra |= RightClipboard
	}
	if c.files {
		extra |= RightFiles
	}
	r := rightsOf(to, extra)
	if r.Has(RightClipboard) && !Rights(c.rights.Load()).Has(RightClipboard) {
		c.clipSince = time.Now()
	}
	c.rights.Store(uint32(r))
	c.seq++
	ev := Event{Seq: c.seq, Time: c.cfg.Now(), Action: a, From: from, To: to,
		Rights: r, Expert: c.expert, Reason: reason, Auto: auto}
	for _, g := range c.guards {
		g(ev)
	}
	if c.cfg.Audit != nil {
		c.cfg.Audit(ev)
	}
	for s := range c.subs {
		s.push(ev)
	}
	if to == Ended {
		for s := range c.subs {
			s.finish()
		}
		clear(c.subs)
	}
}

// rightsOf is the rights in state s, with extra (the clipboard and files
// rights the novice granted) only while the expert can view.
func rightsOf(s State, extra Rights) Rights {
	var r Rights
	switch s {
	case Viewing, ControlAsked:
		r = RightView
	case Controlling:
		r = RightView | RightControl
	default:
		return 0
	}
	return r | extra&(RightClipboard|RightFiles)
}

// guard registers g to run synchronously on every transition, with the
// Consent locked and before anyone else hears of it. The gate uses it to
// stop input and release held keys before TakeBackControl returns.
func (c *Consent) guard(g func(Event)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.guards = append(c.guards, g)
}

// Subscribe returns a channel that receives every later transition, in
// order, none dropped: a slow reader never blocks the Consent (events
// queue up; there are only as many as the novice's and the expert's
// actions). The channel is closed after the Ended event or when cancel
// is called. Read it until it is closed or call cancel (always safe, and
// idempotent): either stops its goroutine.
func (c *Consent) Subscribe() (events <-chan Event, cancel func()) {
	s := &subscriber{out: make(chan Event), wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	if c.state == Ended {
		c.mu.Unlock()
		close(s.out)
		return s.out, func() {}
	}
	c.subs[s] = struct{}{}
	c.mu.Unlock()
	go s.run()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, s)
			c.mu.Unlock()
			close(s.done)
		})
	}
}

// subscriber is an unbounded, ordered queue drained by its own goroutine.
type subscriber struct {
	mu       sync.Mutex
	queue    []Event
	finished bool
	wake     chan struct{}
	out      chan Event
	done     chan struct{}
}

func (s *subscriber) push(ev Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) finish() {
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		q, finished := s.queue, s.finished
		s.queue = nil
		s.mu.Unlock()
		for _, ev := range q {
			select {
			case s.out <- ev:
			case <-s.done:
				return
			}
		}
		if finished && len(q) == 0 {
			return
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}

// checkText rejects text that could mislead the novice or corrupt a log
// line: invalid UTF-8, control characters (newlines only if multiline),
// and bidirectional overrides.
func checkText(s string, max int, multiline bool) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes, more than %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return errors.New("invalid UTF-8")
	}
	for _, r := range s {
		if !allowedRune(r, multiline) {
			return fmt.Errorf("forbidden character %U", r)
		}
	}
	return nil
}

func allowedRune(r rune, multiline bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return multiline
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return false
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return false
	}
	return true
}

// sanitize turns local, trusted-but-careless text into a single safe
// line of at most max bytes.
func sanitize(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if allowedRune(r, false) {
			return r
		}
		return ' '
	}, s)
	return truncate(strings.TrimSpace(s), max)
}

// truncate cuts s to at most max bytes without splitting a character.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
