package webview

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// readEvent reads the next event from the server.
func readEvent(t *testing.T, c *websocket.Conn) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("event of type %v", typ)
	}
	var ev Event
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %s: %v", data, err)
	}
	return ev
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// waitClosed reads until the server closes c and returns its status.
func waitClosed(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal("the server did not close the connection")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func TestEventsReplayAndLive(t *testing.T) {
	b := newFakeBackend()
	b.leaves, b.givebacks = make(chan string, 1), make(chan struct{}, 1)
	ts := startServer(t, b, Options{NovicesName: "Alice"})
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	// A page opened before anything happened sees "connecting".
	early := ts.events(t)
	if ev := readEvent(t, early); ev.Type != EventState || ev.State != StateConnecting {
		t.Fatalf("first event %+v, want state connecting", ev)
	}

	ts.Publish(Event{Type: EventState, State: StateViewing})
	ts.Publish(Event{Type: EventChat, Text: "hi, can you see my screen?", Time: at})
	ts.Publish(Event{Type: EventChat, From: "Alice's laptop", Text: "second"})
	ts.Publish(Event{Type: "bogus"})
	ts.Publish(Event{Type: EventState, State: "bogus"})

	want := []Event{
		{Type: EventState, State: StateViewing},
		{Type: EventChat, From: "Alice", Text: "hi, can you see my screen?", Time: at},
		{Type: EventChat, From: "Alice's laptop", Text: "second"},
	}
	check := func(c *websocket.Conn, want []Event) {
		t.Helper()
		for _, w := range want {
			ev := readEvent(t, c)
			if ev.Time.IsZero() {
				t.Errorf("event %+v has no time", ev)
			}
			if w.Time.IsZero() {
				ev.Time = time.Time{}
			}
			if !ev.Time.Equal(w.Time) || ev.Type != w.Type || ev.State != w.State || ev.From != w.From || ev.Text != w.Text {
				t.Fatalf("event %+v, want %+v", ev, w)
			}
		}
	}
	check(early, want)
	// A page opened now gets the last state and the history.
	late := ts.events(t)
	check(late, want)

	// The expert chats: the backend gets the line, every page sees it
	// as the expert's own (no From).
	send(t, late, `{"type":"chat","text":"  yes, I can  "}`)
	if got := <-b.chats; got != "yes, I can" {
		t.Fatalf("backend got chat %q", got)
	}
	mine := []Event{{Type: EventChat, Text: "yes, I can"}}
	check(late, mine)
	check(early, mine)

	send(t, early, `{"type":"request_control"}`)
	<-b.controls

	// The path travels with the state; chat and the end carry none.
	ts.Publish(Event{Type: EventState, State: StateControlling, Path: "relay-udp"})
	check(early, []Event{{Type: EventState, State: StateControlling, Path: "relay-udp"}})

	send(t, early, `{"type":"give_back_control"}`)
	<-b.givebacks
	send(t, late, `{"type":"leave"}`)
	if got := <-b.leaves; got != "the expert left" {
		t.Errorf("Leave told the novice %q", got)
	}

	// The end is final: later events change nothing.
	ts.Publish(Event{Type: EventEnded, Text: "Alice stopped sharing"})
	ts.Publish(Event{Type: EventState, State: StateViewing})
	ts.Publish(Event{Type: EventChat, Text: "too late"})
	ended := []Event{{Type: EventEnded, State: StateEnded, Text: "Alice stopped sharing"}}
	check(early, ended)
	last := ts.events(t)
	check(last, append(ended, want[1:]...)[:1])
}

func TestEventsStateEndedIsEnded(t *testing.T) {
	ts := startServer(t, newFakeBackend(), Options{})
	ts.Publish(Event{Type: EventState, State: StateEnded, Text: "expired"})
	c := ts.events(t)
	if ev := readEvent(t, c); ev.Type != EventEnded || ev.State != StateEnded || ev.Text != "expired" {
		t.Fatalf("got %+v, want an ended event", ev)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	ts := startServer(t, newFakeBackend(), Options{NovicesName: "Bob"})
	const n = historyLines + 50
	for i := range n {
		ts.Publish(Event{Type: EventChat, Text: fmt.Sprint(i)})
	}
	c := ts.events(t)
	readEvent(t, c) // state
	for i := n - historyLines; i < n; i++ {
		if ev := readEvent(t, c); ev.Text != fmt.Sprint(i) {
			t.Fatalf("history line %q, want %d", ev.Text, i)
		}
	}
	if got := len(ts.hub.history); got != historyLines {
		t.Fatalf("history holds %d lines", got)
	}
	if got := cap(ts.hub.history); got > 2*historyLines {
		t.Fatalf("history array grew to %d", got)
	}
}

func TestPublishTruncatesChat(t *testing.T) {
	ts := startServer(t, newFakeBackend(), Options{})
	ts.Publish(Event{Type: EventChat, Text: strings.Repeat("x", 3*maxChatBytes)})
	c := ts.events(t)
	readEvent(t, c)
	if ev := readEvent(t, c); len(ev.Text) != maxChatBytes || ev.From != "Them" {
		t.Fatalf("chat of %d bytes from %q", len(ev.Text), ev.From)
	}
}

func TestBackendErrorsGoToThePage(t *testing.T) {
	b := newFakeBackend()
	b.err = errBackend
	ts := startServer(t, b, Options{})
	c := ts.events(t)
	other := ts.events(t)
	readEvent(t, c)
	readEvent(t, other)
	for _, msg := range []string{`{"type":"request_control"}`, `{"type":"chat","text":"hello"}`} {
		send(t, c, msg)
		ev := readEvent(t, c)
		if ev.Type != eventError || !strings.Contains(ev.Text, errBackend.Error()) {
			t.Fatalf("after %s: %+v, want an error event", msg, ev)
		}
	}
	// The other page heard nothing: its next event is the next publish.
	ts.Publish(Event{Type: EventState, State: StateViewing})
	if ev := readEvent(t, other); ev.Type != EventState {
		t.Fatalf("other page got %+v", ev)
	}
	if ev := readEvent(t, c); ev.Type != EventState {
		t.Fatalf("page got %+v after its errors", ev)
	}
}

func TestGarbageClosesEvents(t *testing.T) {
	tests := []struct {
		name   string
		typ    websocket.MessageType
		msg    string
		status websocket.StatusCode
	}{
		{"not json", websocket.MessageText, "hello", websocket.StatusPolicyViolation},
		{"unknown type", websocket.MessageText, `{"type":"grant_control"}`, websocket.StatusPolicyViolation},
		{"extra field", websocket.MessageText, `{"type":"request_control","force":true}`, websocket.StatusPolicyViolation},
		{"control chars", websocket.MessageText, `{"type":"chat","text":"\u001b]0;x\u0007"}`, websocket.StatusPolicyViolation},
		{"binary", websocket.MessageBinary, `{"type":"request_control"}`, websocket.StatusUnsupportedData},
		{"huge", websocket.MessageText, `{"type":"chat","text":"` + strings.Repeat("a", maxMessageBytes) + `"}`, websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend()
			ts := startServer(t, b, Options{})
			c := ts.events(t)
			readEvent(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// A huge message may be cut off by the close.
			_ = c.Write(ctx, tt.typ, []byte(tt.msg))
			if st := waitClosed(t, c); st != tt.status {
				t.Fatalf("closed with %v, want %v", st, tt.status)
			}
			if len(b.chats) != 0 || len(b.controls) != 0 {
				t.Fatal("garbage reached the backend")
			}
		})
	}
}

func TestStuckSubscriber(t *testing.T) {
	var h hub
	h.init()
	sub := h.subscribe()
	for range queueLen + 1 {
		h.publish(Event{Type: EventChat, From: "x", Text: "x"})
	}
	select {
	case <-sub.stuck:
	default:
		t.Fatal("a page that does not read is not marked stuck")
	}
	// More events neither block nor panic.
	h.publish(Event{Type: EventChat, From: "x", Text: "x"})
}
