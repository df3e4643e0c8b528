package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/novicepage"
	"github.com/assist-project/assist/session"
	"github.com/coder/websocket"
)

// TestNoviceUITerminalAndPage runs one real session (over net.Pipe, no
// desktop) with both front ends: whichever answers first settles the
// question, the other shows it as settled, and the page's take back,
// chat and withdraw reach the session.
func TestNoviceUITerminalAndPage(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ui, out, pageURL := startTestUI(t, ctx, novicepage.Status{Code: "ABCD-EFGH", State: session.Waiting})
	pg := dialNovicePage(t, pageURL)
	pg.waitStatus(t, "the first status", func(s novicepage.Status) bool { return s.Code == "ABCD-EFGH" })

	nc, ec := net.Pipe()
	nov, err := session.StartNovice(ctx, nc, expertName, session.NoviceConfig{Input: nopInjector{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	exp := session.StartExpert(ec, log)
	defer exp.Leave("test over")
	ui.status.Expert = expertName
	quit := make(chan bool, 1)
	go func() { quit <- ui.runSession(nov, expertName, nil) }()

	// The terminal answers the view question; the page sees it settled
	// and its late answer is refused.
	q := pg.waitStatus(t, "the view question", func(s novicepage.Status) bool { return s.Question != nil && s.State == session.Asking })
	out.wait(t, "wants to see your screen")
	ui.con.keys <- key{kind: 'y'}
	pg.waitStatus(t, "viewing, no question", func(s novicepage.Status) bool { return s.Question == nil && s.State == session.Viewing })
	waitExpertState(t, exp, session.Viewing)
	pg.send(t, map[string]any{"type": "answer", "question": q.Question.ID, "allow": false})
	pg.waitNotice(t, "already answered")
	if st := nov.State(); st != session.Viewing {
		t.Fatalf("after the page's late Deny the state is %v, want viewing", st)
	}

	// The page answers the control question; a late terminal key does
	// nothing.
	if err := exp.RequestControl(ctx); err != nil {
		t.Fatal(err)
	}
	q = pg.waitStatus(t, "the control question", func(s novicepage.Status) bool { return s.Question != nil && s.Question.Right == "control" })
	pg.send(t, map[string]any{"type": "answer", "question": q.Question.ID, "allow": true})
	out.wait(t, "answered on the page: yes")
	waitExpertState(t, exp, session.Controlling)
	ui.con.keys <- key{kind: 'n'}
	pg.waitStatus(t, "controlling", func(s novicepage.Status) bool { return s.State == session.Controlling && s.Question == nil })

	pg.send(t, map[string]any{"type": "take_back"})
	waitExpertState(t, exp, session.Viewing)
	out.wait(t, "control taken back on the page")
	pg.send(t, map[string]any{"type": "take_back"})
	pg.waitNotice(t, "does not have control")

	// Chat both ways; the terminal's lines reach the page too.
	pg.send(t, map[string]any{"type": "chat", "text": "from the page"})
	waitExpertChat(t, exp, "from the page")
	ui.con.keys <- key{kind: 'm', text: "from the terminal"}
	waitExpertChat(t, exp, "from the terminal")
	if err := exp.SendChat(ctx, "from the expert"); err != nil {
		t.Fatal(err)
	}
	out.wait(t, expertName+": from the expert")
	lines := pg.waitChat(t, 3)
	want := []novicepage.ChatLine{{From: "you", Mine: true, Text: "from the page"}, {From: "you", Mine: true, Text: "from the terminal"}, {From: expertName, Text: "from the expert"}}
	for i, w := range want {
		if lines[i].From != w.From || lines[i].Mine != w.Mine || lines[i].Text != w.Text {
			t.Errorf("chat line %d: %+v, want %+v", i, lines[i], w)
		}
	}

	pg.send(t, map[string]any{"type": "withdraw"})
	select {
	case q := <-quit:
		if !q {
			t.Error("Withdraw on the page did not stop assist invite")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after Withdraw")
	}
	waitExpertState(t, exp, session.Ended)
	pg.waitStatus(t, "ended", func(s novicepage.Status) bool { return s.State == session.Ended })
}

type nopInjector struct{}

func (nopInjector) Pointer(x, y int, buttons uint8) error { return nil }
func (nopInjector) Key(keysym uint32, down bool) error    { return nil }

// lockedLines is the terminal's output, read by the test while the UI
// writes it.
type lockedLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLines) wait(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		ok := strings.Contains(l.buf.String(), substr)
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("the terminal never showed %q:\n%s", substr, l.buf.String())
}

func waitExpertState(t *testing.T, exp *session.Expert, want session.State) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if st, _ := exp.State(); st == want {
			return
		}
		select {
		case <-exp.Events():
		case <-time.After(10 * time.Millisecond):
		case <-timeout:
			st, _ := exp.State()
			t.Fatalf("the expert is in state %v, want %v", st, want)
		}
	}
}

// waitExpertChat reads the expert's events until the chat line text.
func waitExpertChat(t *testing.T, exp *session.Expert, text string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-exp.Events():
			if !ok {
				t.Fatalf("the session ended before the expert got %q", text)
			}
			if ev.IsChat && ev.Chat == text {
				return
			}
		case <-timeout:
			t.Fatalf("the expert never got %q", text)
		}
	}
}

// novicePageClient is the page's WebSocket, as the browser uses it.
type novicePageClient struct {
	c      *websocket.Conn
	status novicepage.Status
	chat   []novicepage.ChatLine
}

// startTestUI starts the novice's front ends with a scripted console and
// the page, serving until ctx ends; it returns the UI, the console's
// output and the page's URL.
func startTestUI(t *testing.T, ctx context.Context, status novicepage.Status) (*noviceUI, *lockedLines, string) {
	t.Helper()
	out := new(lockedLines)
	ui := &noviceUI{
		con:    &console{keys: make(chan key, 16), restore: func() {}, out: out},
		out:    out,
		status: status,
	}
	pageURL, err := ui.startPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A cleanup, not a defer: it must run after the page's connection
	// is closed, or the server waits for the closing handshake.
	t.Cleanup(func() { ui.closePage(nil) })
	return ui, out, pageURL
}

func dialNovicePage(t *testing.T, pageURL string) *novicePageClient {
	t.Helper()
	u, err := url.Parse(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+u.Host+u.Path+"events", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://" + u.Host}},
	})
	if err != nil {
		t.Fatalf("dial the page's events: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &novicePageClient{c: c}
}

// read reads one message while waiting for what; a notice is returned,
// status and chat are kept.
func (p *novicePageClient) read(t *testing.T, what string) (notice string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, data, err := p.c.Read(ctx)
	if err != nil {
		t.Fatalf("waiting for %s on the page: %v (last status %+v)", what, err, p.status)
	}
	var m struct {
		Type   string                `json:"type"`
		Status *novicepage.Status    `json:"status"`
		Reset  bool                  `json:"reset"`
		Lines  []novicepage.ChatLine `json:"lines"`
		Text   string                `json:"text"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("message %s: %v", data, err)
	}
	switch m.Type {
	case "status":
		p.status = *m.Status
	case "chat":
		if m.Reset {
			p.chat = nil
		}
		p.chat = append(p.chat, m.Lines...)
	case "notice":
		return m.Text
	}
	return ""
}

func (p *novicePageClient) waitStatus(t *testing.T, what string, ok func(novicepage.Status) bool) novicepage.Status {
	t.Helper()
	for !ok(p.status) {
		p.read(t, what)
	}
	return p.status
}

func (p *novicePageClient) waitNotice(t *testing.T, substr string) {
	t.Helper()
	for {
		if n := p.read(t, "a notice"); n != "" {
			if !strings.Contains(n, substr) {
				t.Fatalf("notice %q, want one about %q", n, substr)
			}
			return
		}
	}
}

func (p *novicePageClient) waitChat(t *testing.T, n int) []novicepage.ChatLine {
	t.Helper()
	for len(p.chat) < n {
		p.read(t, "chat lines")
	}
	return p.chat
}

func (p *novicePageClient) send(t *testing.T, msg map[string]any) {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("send %s: %v", b, err)
	}
}
