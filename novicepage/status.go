package novicepage

import (
	"slices"
	"sync"
	"time"

	"github.com/assist-project/assist/session"
)

// Status is everything the page shows besides the chat. The caller owns
// it and replaces it whole with SetStatus.
type Status struct {
	// Code is what the novice reads out to the expert.
	Code string `json:"code"`
	// Password is shown when the code does not carry it ("" otherwise).
	Password  string    `json:"password,omitempty"`
	Expires   time.Time `json:"expires"`
	Server    string    `json:"server,omitempty"`
	Addresses []string  `json:"addresses,omitempty"`
	// Expert is the connected expert's name; "" while nobody is.
	Expert string `json:"expert,omitempty"`
	// Path says how the expert is connected, in plain words for the
	// novice ("directly, from 192.0.2.1:5820", "through the Assist
	// server").
	Path string `json:"path,omitempty"`
	// Detail is the technical path ("through the server (WebRTC), path
	// relay-udp"), shown only under the page's Details.
	Detail string `json:"detail,omitempty"`
	// State is the session's consent state; Waiting while no expert is
	// connected.
	State session.State `json:"state"`
	// Reason says why the state last changed, in words for the novice.
	Reason string `json:"reason,omitempty"`
	// Question is the pending consent question, nil if none.
	Question *Question `json:"question,omitempty"`
	// Clipboard is set while the novice shares the clipboard with the
	// expert (copy and paste both ways); the page's toggle shows it.
	Clipboard bool `json:"clipboard,omitempty"`
	// Files is set while the novice allows files both ways; the page's
	// toggle shows it.
	Files bool `json:"files,omitempty"`
	// StillSharing is set while the novice is asked "Still sharing with
	// NAME?" after a long time of sharing: when the session ends unless
	// they answer (Keep sharing is ActKeepSharing, Stop sharing ActEnd).
	StillSharing time.Time `json:"still_sharing,omitzero"`
	// Transfers are the session's latest file transfers, newest last.
	Transfers []Transfer `json:"transfers,omitempty"`
	// Stopped is set once the invitation is over (withdrawn, expired,
	// assist invite stopping): the page then offers nothing more.
	Stopped bool `json:"stopped,omitempty"`

	// Link is the invitation as a link the expert opens: the server's
	// browser address with the code, or the assist:// link of a direct
	// invitation. The page shows it with a QR code of it.
	Link string `json:"link,omitempty"`
	// QR is a PNG of a QR code of Link as a data: URL; the server fills
	// it in from Link.
	QR string `json:"qr,omitempty"`
	// File is set when the page can download the invitation file
	// (Server.SetFile).
	File bool `json:"file,omitempty"`
	// App is the app's part (Server.SetApp); nil on assist invite's page.
	App *App `json:"app,omitempty"`
	// Agent marks the page of assist agent: there is no invitation, and
	// offers of help are asked here (Question.Right "offer").
	Agent bool `json:"agent,omitempty"`
	// History is, on the agent's page, this machine's sessions as its
	// audit log tells them, newest first: plain words, local time.
	History []string `json:"history,omitempty"`
}

// Question is a consent question the page shows with Allow and Deny.
type Question struct {
	// ID tells questions apart, so that a late click cannot answer a
	// newer question; the caller numbers them from 1.
	ID uint64 `json:"id"`
	// Right is "view", "control", "clipboard" or "files"; or "offer",
	// an organisation's offer of help, which the page asks with Text and
	// Accept and Decline (ActAnswer's Allow is Accept).
	Right string `json:"right"`
	// Text, for an "offer", is the whole question as the agent asks it
	// everywhere ("Dana from ACME IT offers to help you. Accept?"),
	// shown as text, never as markup.
	Text string `json:"text,omitempty"`

	// Via says how the expert reached this computer, following
	// "Connected " (session.ViaDirect, session.ViaServer); "" if unknown.
	Via string `json:"via,omitempty"`
	// Warning is shown with every question (session.Warning).
	Warning string `json:"warning,omitempty"`
	// Deadline is when the question counts as a no; the page counts
	// down to it. Zero: no deadline.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Transfer is one file transfer as the page shows it, with a progress
// bar while it runs.
type Transfer struct {
	Name     string `json:"name"`
	Size     uint64 `json:"size"`
	Done     uint64 `json:"done"`
	State    string `json:"state"` // filetransfer.State
	Incoming bool   `json:"incoming,omitempty"`
	Path     string `json:"path,omitempty"`   // where an incoming file was saved
	Reason   string `json:"reason,omitempty"` // why it was refused, cancelled or failed
}

func (s Status) clone() Status {
	s.Addresses = slices.Clone(s.Addresses)
	if s.App != nil {
		a := s.App.clone()
		s.App = &a
	}
	s.Transfers = slices.Clone(s.Transfers)
	if s.Question != nil {
		q := *s.Question
		s.Question = &q
	}
	return s
}

// ChatLine is one line of the chat, as the page shows it.
type ChatLine struct {
	// Seq numbers lines from 1; the page uses it to skip duplicates.
	Seq  uint64    `json:"seq"`
	From string    `json:"from"`
	Mine bool      `json:"mine"` // written by the novice
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// Bounds on what the server keeps: a reload shows the last maxHistory
// chat lines, and a page that does not read its notices keeps only the
// last maxNotices.
const (
	maxHistory = 200
	maxNotices = 8
)

// hub holds the latest status, the chat history and the open pages.
// Pages are not sent a queue of changes but woken up: each compares what
// it has sent with the hub's current content, so a stalled page costs
// nothing and the rest never wait for it.
type hub struct {
	mu      sync.Mutex
	status  Status
	version uint64 // of status; starts at 1 so a new page always sends it
	lines   []ChatLine
	lastSeq uint64
	pages   map[*page]struct{}

	app *App // nil until SetApp: assist invite's page has none
	// qrFor and qr cache the QR code of the last Link.
	qrFor, qr string
	file      []byte // the invitation file to download; nil if none
	log       func(msg string, args ...any)
}

// page is one open tab's connection.
type page struct {
	wake    chan struct{} // capacity 1: "something changed"
	notices []string      // guarded by hub.mu
}

// cursor is what one page has been sent.
type cursor struct {
	version uint64
	seq     uint64
	started bool
}

func (h *hub) init() {
	h.version = 1
	h.pages = make(map[*page]struct{})
}

func (h *hub) join() *page {
	p := &page{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.pages[p] = struct{}{}
	h.mu.Unlock()
	return p
}

func (h *hub) leave(p *page) {
	h.mu.Lock()
	delete(h.pages, p)
	h.mu.Unlock()
}

// wakeAll must be called with h.mu held.
func (h *hub) wakeAll() {
	for p := range h.pages {
		p.signal()
	}
}

func (p *page) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (h *hub) setStatus(s Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s = s.clone()
	if s.Link != h.qrFor {
		h.qrFor, h.qr = s.Link, ""
		if s.Link != "" {
			qr, err := QRDataURL(s.Link)
			if err != nil && h.log != nil {
				h.log("no QR code for the invitation", "err", err)
			}
			h.qr = qr
		}
	}
	s.QR = h.qr
	s.App = nil
	h.status = s
	h.version++
	h.wakeAll()
}

func (h *hub) setApp(a App) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a = a.clone()
	h.app = &a
	h.version++
	h.wakeAll()
}

func (h *hub) setFile(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file = slices.Clone(data)
	h.version++
	h.wakeAll()
}

func (h *hub) getFile() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.file
}

func (h *hub) addChat(l ChatLine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastSeq++
	l.Seq = h.lastSeq
	h.lines = append(h.lines, l)
	if len(h.lines) > maxHistory {
		// Copy down rather than reslice, so the array does not grow
		// forever in a long session.
		h.lines = append(h.lines[:0], h.lines[len(h.lines)-maxHistory:]...)
	}
	h.wakeAll()
}

// notify queues a notice for one page; it is a no-op once p has left.
func (h *hub) notify(p *page, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.pages[p]; !ok {
		return
	}
	p.notices = append(p.notices, text)
	if len(p.notices) > maxNotices {
		p.notices = p.notices[len(p.notices)-maxNotices:]
	}
	p.signal()
}

// update is what a page has not been sent yet.
type update struct {
	status  *Status
	chat    *chatUpdate
	notices []string
}

type chatUpdate struct {
	Reset bool       `json:"reset"`
	Lines []ChatLine `json:"lines"`
}

// next returns what p must send to catch up, and advances c as if sent.
func (h *hub) next(p *page, c *cursor) update {
	h.mu.Lock()
	defer h.mu.Unlock()
	var u update
	if c.version != h.version {
		s := h.status.clone()
		if h.app != nil {
			a := h.app.clone()
			s.App = &a
		}
		s.File = h.file != nil
		u.status = &s
		c.version = h.version
	}
	first := h.lastSeq - uint64(len(h.lines)) + 1 // Seq of h.lines[0]
	switch {
	case !c.started || c.seq+1 < first:
		// A new page, or one that fell behind the history: it
		// replaces what it shows.
		u.chat = &chatUpdate{Reset: true, Lines: slices.Clone(h.lines)}
	case c.seq < h.lastSeq:
		u.chat = &chatUpdate{Lines: slices.Clone(h.lines[c.seq+1-first:])}
	}
	if u.chat != nil && u.chat.Lines == nil {
		u.chat.Lines = []ChatLine{}
	}
	c.started = true
	c.seq = h.lastSeq
	u.notices, p.notices = p.notices, nil
	return u
}
