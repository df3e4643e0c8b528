package webview

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Event types.
const (
	EventState = "state" // the session's state changed (Event.State)
	EventChat  = "chat"  // a chat line (Event.From, Event.Text)
	EventEnded = "ended" // the session is over (Event.Text: why)
)

// Session states, in Event.State.
const (
	StateConnecting   = "connecting"
	StateViewing      = "viewing"
	StateControlAsked = "control-asked"
	StateControlling  = "controlling"
	StateEnded        = "ended"
)

// eventError is sent to one page whose request failed; Publish refuses it.
const eventError = "error"

// Event is one message from the server to the pages.
type Event struct {
	Type  string `json:"type"`
	State string `json:"state,omitempty"`
	// From is who wrote a chat line. On the wire an empty From marks the
	// expert's own lines, which the server publishes itself once
	// Backend.SendChat succeeds; a published line with no From is the
	// novice's.
	From string    `json:"from,omitempty"`
	Text string    `json:"text,omitempty"`
	Time time.Time `json:"time,omitzero"`
	// Clipboard is set in a state event while the novice shares the
	// clipboard: the page then offers the expert's paste box and shows
	// what the novice copies.
	Clipboard bool `json:"clipboard,omitempty"`
	// Path is how the session's connection goes ("direct", "relay-udp",
	// ...), in a state event; the page shows it in a detail line.
	Path string `json:"path,omitempty"`
}

const (
	// historyLines is how much chat a page opened late still sees.
	historyLines = 200
	// maxChatBytes caps one chat line, both ways.
	maxChatBytes = 4096
	// queueLen is how many events a page may lag behind before it is
	// disconnected as stuck; it holds a full history replay.
	queueLen = historyLines + 64
)

// hub keeps the session's state and chat history and fans events out to
// the open pages. Publish never blocks on a page.
type hub struct {
	mu      sync.Mutex
	state   Event // the last state or ended event
	history []Event
	subs    map[*subscriber]struct{}
}

// subscriber is one page's events connection.
type subscriber struct {
	ch chan Event
	// stuck is closed when the page fell queueLen events behind.
	stuck     chan struct{}
	stuckOnce sync.Once
}

func (h *hub) init() {
	h.state = Event{Type: EventState, State: StateConnecting}
	h.subs = make(map[*subscriber]struct{})
}

// subscribe registers a page and queues, atomically with respect to
// publish, what it missed: the current state and the chat history.
func (h *hub) subscribe() *subscriber {
	sub := &subscriber{ch: make(chan Event, queueLen), stuck: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	sub.ch <- h.state
	for _, ev := range h.history {
		sub.ch <- ev
	}
	h.subs[sub] = struct{}{}
	return sub
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
}

// send queues ev for one page, or marks the page stuck.
func (sub *subscriber) send(ev Event) {
	select {
	case sub.ch <- ev:
	default:
		sub.stuckOnce.Do(func() { close(sub.stuck) })
	}
}

// normalize checks a published event and fills in its defaults; ok is
// false for events the page would not understand.
func normalize(ev Event, novice string) (Event, bool) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	switch ev.Type {
	case EventState:
		switch ev.State {
		case StateConnecting, StateViewing, StateControlAsked, StateControlling:
		case StateEnded:
			ev.Type = EventEnded
		default:
			return ev, false
		}
	case EventEnded:
		ev.State = StateEnded
		ev.Clipboard = false
		ev.Path = ""
	case EventChat:
		ev.State = ""
		ev.Clipboard = false
		ev.Path = ""
		if ev.From == "" {
			ev.From = novice
			if ev.From == "" {
				ev.From = "Them"
			}
		}
		ev.Text = truncate(ev.Text, maxChatBytes)
	default:
		return ev, false
	}
	return ev, true
}

// publish records ev and sends it to every page. After the session ended
// nothing changes any more.
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state.Type == EventEnded {
		return
	}
	switch ev.Type {
	case EventState, EventEnded:
		h.state = ev
	case EventChat:
		if len(h.history) == historyLines {
			// Shift rather than reslice so the array does not grow
			// for ever.
			copy(h.history, h.history[1:])
			h.history = h.history[:historyLines-1]
		}
		h.history = append(h.history, ev)
	}
	for sub := range h.subs {
		sub.send(ev)
	}
}

// Publish sends ev to every open page and keeps the state and the chat
// history for pages opened later. Chat lines are the novice's (From
// defaults to Options.NovicesName); the expert's own lines are published
// by the server. An "ended" event (or a state event with State "ended")
// carries the reason in Text and is final. Events of unknown types or
// states are dropped and logged.
func (s *Server) Publish(ev Event) {
	ev, ok := normalize(ev, s.name)
	if !ok {
		s.log.Warn("dropping an event the page would not understand", "type", ev.Type, "state", ev.State)
		return
	}
	s.hub.publish(ev)
}

// truncate cuts s to at most n bytes at a character boundary and drops
// invalid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
