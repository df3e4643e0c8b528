package webview

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/coder/websocket"
)

// writeTimeout bounds one event write: a page that does not read for
// this long is gone.
const writeTimeout = 10 * time.Second

// serveEvents runs one page's events connection: a writer sends the
// hub's events, the reader handles the page's requests.
//
// Reads and writes do not take the request's context: coder/websocket
// drops the connection without a close frame when a Read's or Write's
// context is cancelled, and the page should learn why it was closed. On
// shutdown the writer sends what is queued (typically the "ended" event
// that made assist join stop) and then closes the connection properly.
func (s *Server) serveEvents(t *localpage.Tracker, w http.ResponseWriter, r *http.Request) {
	c, ok := s.accept(t, w, r, nil)
	if !ok {
		return
	}
	defer t.Done()
	defer c.CloseNow()
	c.SetReadLimit(maxMessageBytes)
	ctx := r.Context()

	sub := s.hub.subscribe()
	defer s.hub.unsubscribe(sub)
	quit := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		status, reason := s.writeEvents(ctx, quit, c, sub)
		if status != 0 {
			c.Close(status, closeReason(reason))
		}
	}()
	status, reason := s.readRequests(ctx, c, sub)
	close(quit)
	<-writerDone
	c.Close(status, closeReason(reason))
}

// writeEvents sends the page its queued events until quit is closed (it
// returns 0) or it has to close the connection: it returns how.
func (s *Server) writeEvents(ctx context.Context, quit <-chan struct{}, c *websocket.Conn, sub *subscriber) (websocket.StatusCode, string) {
	for {
		select {
		case <-quit:
			return 0, ""
		case <-sub.stuck:
			s.log.Warn("closing a page that stopped reading its events")
			return websocket.StatusPolicyViolation, "the page fell too far behind"
		case <-ctx.Done():
			for {
				select {
				case ev := <-sub.ch:
					if s.writeEvent(c, ev, time.Second) != nil {
						return websocket.StatusGoingAway, "assist join stopped"
					}
				default:
					return websocket.StatusGoingAway, "assist join stopped"
				}
			}
		case ev := <-sub.ch:
			if s.writeEvent(c, ev, writeTimeout) != nil {
				// The reader sees the broken connection too.
				return 0, ""
			}
		}
	}
}

func (s *Server) writeEvent(c *websocket.Conn, ev Event, timeout time.Duration) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, data)
}

// readRequests handles the page's messages until the connection ends and
// returns how to close it. ctx is for the backend's calls.
func (s *Server) readRequests(ctx context.Context, c *websocket.Conn, sub *subscriber) (websocket.StatusCode, string) {
	for {
		typ, data, err := c.Read(context.WithoutCancel(ctx))
		if err != nil {
			if ctx.Err() == nil && websocket.CloseStatus(err) == -1 {
				s.log.Debug("events connection broke", "err", err)
			}
			return websocket.StatusNormalClosure, ""
		}
		if typ != websocket.MessageText {
			return websocket.StatusUnsupportedData, "text messages only"
		}
		msg, err := parseMessage(data)
		if err != nil {
			s.log.Warn("closing a page that sent a bad message", "err", err)
			return websocket.StatusPolicyViolation, err.Error()
		}
		s.handle(ctx, msg, sub)
	}
}

// handle runs one request; failures are reported to the page that asked.
func (s *Server) handle(ctx context.Context, msg message, sub *subscriber) {
	switch msg.Type {
	case msgRequestControl:
		if err := s.backend.RequestControl(ctx); err != nil {
			s.log.Warn("request for control failed", "err", err)
			sub.send(Event{Type: eventError, Text: "Could not ask for control: " + err.Error(), Time: time.Now()})
		}
	case msgRequestClipboard:
		if err := s.backend.RequestClipboard(ctx); err != nil {
			s.log.Warn("request to share clipboards failed", "err", err)
			sub.send(Event{Type: eventError, Text: "Could not ask to share clipboards: " + err.Error(), Time: time.Now()})
		}
	case msgGiveBack:
		if err := s.backend.GiveBackControl(ctx); err != nil {
			s.log.Warn("giving control back failed", "err", err)
			sub.send(Event{Type: eventError, Text: "Could not give control back: " + err.Error(), Time: time.Now()})
		}
	case msgLeave:
		s.log.Info("the expert left from the page")
		s.backend.Leave(expertLeft)
	case msgChat:
		if err := s.backend.SendChat(ctx, msg.Text); err != nil {
			s.log.Warn("chat line not sent", "err", err)
			sub.send(Event{Type: eventError, Text: "Your message was not sent: " + err.Error(), Time: time.Now()})
			return
		}
		s.hub.publish(Event{Type: EventChat, Text: msg.Text, Time: time.Now()})
	}
}
