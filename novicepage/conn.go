package novicepage

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/coder/websocket"
)

// writeTimeout bounds one write: a page that does not read for this long
// is gone.
const writeTimeout = 10 * time.Second

// serveEvents runs one page's connection: a writer sends what the page
// has not seen, the reader turns the page's messages into Actions.
//
// Reads and writes do not take the request's context: coder/websocket
// drops the connection without a close frame when a Read's or Write's
// context is cancelled, and the page should learn why it was closed. On
// shutdown the writer sends the latest status (typically "stopped") and
// then closes the connection properly, which ends the reader's Read.
func (s *Server) serveEvents(t *localpage.Tracker, w http.ResponseWriter, r *http.Request) {
	c, ok := s.accept(t, w, r)
	if !ok {
		return
	}
	defer t.Done()
	defer c.CloseNow()
	c.SetReadLimit(maxMessageBytes)
	ctx := r.Context()

	p := s.hub.join()
	defer s.hub.leave(p)
	quit := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if status, reason := s.writeUpdates(ctx, quit, c, p); status != 0 {
			c.Close(status, reason)
		}
	}()
	status, reason := s.readActions(ctx, c, p)
	close(quit)
	<-writerDone
	c.Close(status, localpage.Truncate(reason, 123))
}

// writeUpdates keeps the page up to date until quit is closed (it
// returns 0) or it has to close the connection: it returns how.
func (s *Server) writeUpdates(ctx context.Context, quit <-chan struct{}, c *websocket.Conn, p *page) (websocket.StatusCode, string) {
	var cur cursor
	for {
		if err := s.send(c, s.hub.next(p, &cur), writeTimeout); err != nil {
			// The reader sees the broken connection too.
			return 0, ""
		}
		select {
		case <-quit:
			return 0, ""
		case <-p.wake:
		case <-ctx.Done():
			s.send(c, s.hub.next(p, &cur), time.Second)
			return websocket.StatusGoingAway, "assist invite stopped"
		}
	}
}

// send writes an update's messages: status first, so chat lines and
// notices are read against the state they belong to.
func (s *Server) send(c *websocket.Conn, u update, timeout time.Duration) error {
	var msgs []any
	if u.status != nil {
		msgs = append(msgs, struct {
			Type   string  `json:"type"`
			Status *Status `json:"status"`
		}{"status", u.status})
	}
	if u.chat != nil {
		msgs = append(msgs, struct {
			Type string `json:"type"`
			*chatUpdate
		}{"chat", u.chat})
	}
	for _, n := range u.notices {
		msgs = append(msgs, struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{"notice", n})
	}
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = c.Write(ctx, websocket.MessageText, data)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// readActions hands the page's messages to the caller until the
// connection ends, and returns how to close it.
func (s *Server) readActions(ctx context.Context, c *websocket.Conn, p *page) (websocket.StatusCode, string) {
	for {
		typ, data, err := c.Read(context.WithoutCancel(ctx))
		if err != nil {
			if ctx.Err() == nil && websocket.CloseStatus(err) == -1 {
				s.log.Debug("page connection broke", "err", err)
			}
			return websocket.StatusNormalClosure, ""
		}
		if typ != websocket.MessageText {
			return websocket.StatusUnsupportedData, "text messages only"
		}
		m, err := parseMessage(data)
		if err != nil {
			s.log.Warn("closing a page that sent a bad message", "err", err)
			return websocket.StatusPolicyViolation, err.Error()
		}
		if appOnly[m.Kind] && !s.app {
			s.log.Warn("closing a page that sent an action of the app", "action", m.Kind)
			return websocket.StatusPolicyViolation, "not the app"
		}
		a := Action{Kind: m.Kind, Question: m.Question, Allow: m.Allow, Text: m.Text, User: m.User, To: m.To, hub: &s.hub, page: p}
		select {
		case s.actions <- a:
		case <-ctx.Done():
			return websocket.StatusGoingAway, "assist invite stopped"
		}
	}
}

func (s *Server) accept(t *localpage.Tracker, w http.ResponseWriter, r *http.Request) (*websocket.Conn, bool) {
	return localpage.Accept(t, w, r, nil, s.log)
}
