package novicepage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/assist-project/assist/session"
	"github.com/coder/websocket"
)

func newTestServer(t *testing.T) *Server {
	t.Helper()
	return newTestServerOpts(t, Options{})
}

func newTestServerOpts(t *testing.T, o Options) *Server {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoutes(t *testing.T) {
	s := newTestServer(t)
	h := s.handler(new(localpage.Tracker))
	p := "/s/" + s.guard.Secret() + "/"
	wrong := []byte(s.guard.Secret())
	wrong[len(wrong)-1] ^= 1
	tests := []struct {
		name, method, host, path string
		status                   int
		contentType              string // prefix
		body                     string // substring
	}{
		{"page", "GET", "", p, 200, "text/html", `data-testid="allow"`},
		{"page HEAD", "HEAD", "", p, 200, "text/html", ""},
		{"page POST", "POST", "", p, 405, "", ""},
		{"script", "GET", "", p + "novice.js", 200, "text/javascript", "assistNovice"},
		{"style", "GET", "", p + "novice.css", 200, "text/css", ""},
		{"index by name", "GET", "", p + "index.html", 404, "", ""},
		{"dot dot", "GET", "", p + "../../etc/passwd", 404, "", ""},
		{"missing", "GET", "", p + "nope.js", 404, "", ""},
		{"root", "GET", "", "/", 404, "", ""},
		{"no secret, script", "GET", "", "/novice.js", 404, "", ""},
		{"favicon", "GET", "", "/favicon.ico", 404, "", ""},
		{"s", "GET", "", "/s/", 404, "", ""},
		{"no slash after secret", "GET", "", "/s/" + s.guard.Secret(), 404, "", ""},
		{"wrong secret", "GET", "", "/s/" + string(wrong) + "/", 404, "", ""},
		{"secret prefix", "GET", "", "/s/" + s.guard.Secret()[:20] + "/", 404, "", ""},
		{"secret longer", "GET", "", "/s/" + s.guard.Secret() + "x/", 404, "", ""},
		{"secret elsewhere", "GET", "", "/x/" + s.guard.Secret() + "/", 404, "", ""},
		{"secret as query", "GET", "", "/?s=" + s.guard.Secret(), 404, "", ""},
		{"events without secret", "GET", "", "/s/x/events", 404, "", ""},
		{"localhost", "GET", "localhost:8080", p, 200, "text/html", ""},
		{"ipv6 loopback", "GET", "[::1]:8080", p, 200, "text/html", ""},
		{"rebinding host", "GET", "evil.example:8080", p, 404, "", ""},
		{"lan host", "GET", "192.168.1.2:8080", p, 404, "", ""},
		{"host without port", "GET", "127.0.0.1", p, 404, "", ""},
		{"events without upgrade", "GET", "", p + "events", 403, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.path, w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q...", ct, tt.contentType)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body does not contain %q", tt.body)
			}
			if strings.Contains(w.Body.String(), s.guard.Secret()) {
				t.Errorf("the response shows the secret")
			}
			if rp := w.Header().Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("Referrer-Policy %q: the secret could leak", rp)
			}
			for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
				if w.Header().Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
		})
	}
}

func TestURLAndSecret(t *testing.T) {
	a, b := newTestServer(t), newTestServer(t)
	if a.guard.Secret() == b.guard.Secret() {
		t.Fatal("two servers share a secret")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a.guard.Secret())
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, %v; want %d bytes of base64url", a.guard.Secret(), len(raw), err, 32)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u := a.URL(ln)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+/s/[A-Za-z0-9_-]{43}/$`).MatchString(u) || !strings.Contains(u, a.guard.Secret()) {
		t.Errorf("URL %q", u)
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	s := newTestServer(t)
	var lns []net.Listener
	if ln, err := net.Listen("tcp", "0.0.0.0:0"); err == nil {
		lns = append(lns, ln)
	}
	if ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock")); err == nil {
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		t.Skip("cannot listen on anything but loopback here")
	}
	for _, ln := range lns {
		err := s.Serve(context.Background(), ln)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Serve on %s %s: %v, want a refusal that mentions loopback", ln.Addr().Network(), ln.Addr(), err)
		}
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Errorf("listener %s still open", ln.Addr())
		}
	}
}

// testServer is a Server running on a loopback port.
type testServer struct {
	*Server
	url    string // the page
	origin string
	stop   func()
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	return startServerOpts(t, Options{})
}

func startServerOpts(t *testing.T, o Options) *testServer {
	t.Helper()
	s := newTestServerOpts(t, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	u, err := url.Parse(s.URL(ln))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, url: u.String(), origin: "http://" + u.Host}
	var stopped bool
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context was cancelled")
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) dial(t *testing.T, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws := "ws" + strings.TrimPrefix(ts.url, "http") + "events"
	c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: h})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// open connects a page and reads its first status and chat messages.
func (ts *testServer) open(t *testing.T) (*websocket.Conn, Status, chatUpdate) {
	t.Helper()
	c, _, err := ts.dial(t, ts.origin)
	if err != nil {
		t.Fatalf("dial events: %v", err)
	}
	st := readStatus(t, c)
	chat := readChat(t, c)
	if !chat.Reset {
		t.Errorf("a new page's first chat message does not reset: %+v", chat)
	}
	return c, st, chat
}

// serverMsg is any message from the server.
type serverMsg struct {
	Type   string     `json:"type"`
	Status *Status    `json:"status"`
	Reset  bool       `json:"reset"`
	Lines  []ChatLine `json:"lines"`
	Text   string     `json:"text"`
}

func read(t *testing.T, c *websocket.Conn) serverMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message of type %v", typ)
	}
	var m serverMsg
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("message %s: %v", data, err)
	}
	return m
}

func readStatus(t *testing.T, c *websocket.Conn) Status {
	t.Helper()
	m := read(t, c)
	if m.Type != "status" || m.Status == nil {
		t.Fatalf("got %+v, want a status", m)
	}
	return *m.Status
}

func readChat(t *testing.T, c *websocket.Conn) chatUpdate {
	t.Helper()
	m := read(t, c)
	if m.Type != "chat" || m.Lines == nil {
		t.Fatalf("got %+v, want chat lines", m)
	}
	return chatUpdate{Reset: m.Reset, Lines: m.Lines}
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

func (ts *testServer) action(t *testing.T) Action {
	t.Helper()
	select {
	case a := <-ts.Actions():
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no action")
		return Action{}
	}
}

// waitClosed reads until the server closes c and returns its status.
func waitClosed(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the server did not close the connection")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func TestWebSocketOrigin(t *testing.T) {
	ts := startServer(t)
	for _, tt := range []struct {
		name, origin string
		ok           bool
	}{
		{"own origin", ts.origin, true},
		{"no origin", "", false},
		{"other site", "http://evil.example", false},
		{"other port", "http://127.0.0.1:1", false},
		{"localhost for 127.0.0.1", strings.Replace(ts.origin, "127.0.0.1", "localhost", 1), false},
		{"https", strings.Replace(ts.origin, "http:", "https:", 1), false},
		{"null", "null", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := ts.dial(t, tt.origin)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial from %q: %v", tt.origin, err)
				}
				c.CloseNow()
				return
			}
			if err == nil {
				t.Fatalf("dial from %q succeeded", tt.origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial from %q: %v (response %v), want 403", tt.origin, err, resp)
			}
		})
	}
}

// TestTabsInSync: every open page gets every status change and chat line,
// a page opened later (a reload) gets the current status and the history,
// and a notice goes only to the page whose action it answers.
func TestTabsInSync(t *testing.T) {
	ts := startServer(t)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st := Status{Code: "1234-5678", Password: "pw", Expires: expires, Addresses: []string{"192.0.2.1:5820"}}
	ts.SetStatus(st)

	a, got, chat := ts.open(t)
	if got.Code != st.Code || got.Password != "pw" || !got.Expires.Equal(expires) || got.State != session.Waiting || got.Question != nil {
		t.Errorf("first status %+v, want %+v", got, st)
	}
	if len(chat.Lines) != 0 {
		t.Errorf("history %+v, want none", chat.Lines)
	}
	b, _, _ := ts.open(t)

	st.Expert, st.Path, st.State = "Max", "direct 127.0.0.1:4000", session.Asking
	st.Question = &Question{ID: 1, Right: "view"}
	ts.SetStatus(st)
	st.Addresses[0] = "changed after SetStatus"
	for name, c := range map[string]*websocket.Conn{"a": a, "b": b} {
		got := readStatus(t, c)
		if got.Expert != "Max" || got.Path != "direct 127.0.0.1:4000" || got.State != session.Asking ||
			got.Question == nil || *got.Question != (Question{ID: 1, Right: "view"}) || got.Addresses[0] != "192.0.2.1:5820" {
			t.Errorf("page %s: status %+v", name, got)
		}
	}

	// Page b answers; the caller replies to it alone.
	send(t, b, `{"type":"answer","question":1,"allow":true}`)
	act := ts.action(t)
	if act.Kind != ActAnswer || act.Question != 1 || !act.Allow {
		t.Fatalf("action %+v", act)
	}
	act.Reply("too late: answered in the terminal")
	if m := read(t, b); m.Type != "notice" || m.Text != "too late: answered in the terminal" {
		t.Errorf("page b got %+v, want the notice", m)
	}

	ts.AddChat("Max", false, "hello")
	ts.AddChat("You", true, "hi")
	for name, c := range map[string]*websocket.Conn{"a": a, "b": b} {
		var lines []ChatLine
		for len(lines) < 2 {
			m := read(t, c)
			if m.Type != "chat" || m.Reset {
				t.Fatalf("page %s got %+v, want chat lines (the notice went to b only)", name, m)
			}
			lines = append(lines, m.Lines...)
		}
		if len(lines) != 2 || lines[0].Text != "hello" || lines[0].Mine || lines[0].Seq != 1 ||
			lines[1].Text != "hi" || !lines[1].Mine || lines[1].Seq != 2 {
			t.Errorf("page %s: lines %+v", name, lines)
		}
	}

	// A reload: the current status and the whole history.
	c, got, chat := ts.open(t)
	if got.State != session.Asking || got.Question == nil {
		t.Errorf("reloaded page: status %+v", got)
	}
	if len(chat.Lines) != 2 || chat.Lines[1].Text != "hi" {
		t.Errorf("reloaded page: history %+v", chat.Lines)
	}
	c.CloseNow()
}

// TestHistoryBounded: the server keeps the last maxHistory lines, and a
// page that fell further behind starts over from those.
func TestHistoryBounded(t *testing.T) {
	ts := startServer(t)
	for i := range maxHistory + 50 {
		ts.AddChat("Max", false, fmt.Sprint("line ", i))
	}
	_, _, chat := ts.open(t)
	if len(chat.Lines) != maxHistory || chat.Lines[0].Text != "line 50" || chat.Lines[maxHistory-1].Seq != maxHistory+50 {
		t.Fatalf("history: %d lines from %+v", len(chat.Lines), chat.Lines[0])
	}

	// A page that missed more than the history is reset.
	var h hub
	h.init()
	p := h.join()
	var cur cursor
	h.next(p, &cur)
	h.addChat(ChatLine{Text: "first"})
	for range maxHistory + 1 {
		h.addChat(ChatLine{Text: "more"})
	}
	u := h.next(p, &cur)
	if u.chat == nil || !u.chat.Reset || len(u.chat.Lines) != maxHistory {
		t.Fatalf("behind page: %+v", u.chat)
	}
	if u := h.next(p, &cur); u.chat != nil || u.status != nil {
		t.Fatalf("a page that is up to date gets %+v", u)
	}
	for range maxNotices + 3 {
		h.notify(p, "n")
	}
	if u := h.next(p, &cur); len(u.notices) != maxNotices {
		t.Fatalf("%d notices kept, want %d", len(u.notices), maxNotices)
	}
}

func TestActions(t *testing.T) {
	ts := startServer(t)
	c, _, _ := ts.open(t)
	for _, tt := range []struct {
		msg  string
		want Action
	}{
		{`{"type":"answer","question":7,"allow":false}`, Action{Kind: ActAnswer, Question: 7}},
		{`{"type":"take_back"}`, Action{Kind: ActTakeBack}},
		{`{"type":"chat","text":" can you see it? "}`, Action{Kind: ActChat, Text: "can you see it?"}},
		{`{"type":"end"}`, Action{Kind: ActEnd}},
		{`{"type":"withdraw"}`, Action{Kind: ActWithdraw}},
	} {
		send(t, c, tt.msg)
		got := ts.action(t)
		if got.Kind != tt.want.Kind || got.Question != tt.want.Question || got.Allow != tt.want.Allow || got.Text != tt.want.Text {
			t.Errorf("%s: action %+v, want %+v", tt.msg, got, tt.want)
		}
	}
}

// TestBadMessageClosesPage: a page that sends garbage is closed with a
// policy violation; nothing reaches the caller, and other pages go on.
func TestBadMessageClosesPage(t *testing.T) {
	ts := startServer(t)
	good, _, _ := ts.open(t)
	for _, tt := range []struct {
		name string
		typ  websocket.MessageType
		data string
		want websocket.StatusCode
	}{
		{"unknown type", websocket.MessageText, `{"type":"grant"}`, websocket.StatusPolicyViolation},
		{"binary", websocket.MessageBinary, `{"type":"end"}`, websocket.StatusUnsupportedData},
		{"too big", websocket.MessageText, `{"type":"chat","text":"` + strings.Repeat("x", maxMessageBytes) + `"}`, websocket.StatusMessageTooBig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := ts.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Write(ctx, tt.typ, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			if got := waitClosed(t, c); got != tt.want {
				t.Errorf("closed with %v, want %v", got, tt.want)
			}
		})
	}
	select {
	case a := <-ts.Actions():
		t.Fatalf("a bad message made an action: %+v", a)
	default:
	}
	send(t, good, `{"type":"end"}`)
	if a := ts.action(t); a.Kind != ActEnd {
		t.Fatalf("the other page's action: %+v", a)
	}
}

// TestStopSendsFinalStatus: when Serve stops, every page gets the last
// status (the invitation is over) and a Going Away close.
func TestStopSendsFinalStatus(t *testing.T) {
	ts := startServer(t)
	c, _, _ := ts.open(t)
	type result struct {
		last  Status
		close websocket.StatusCode
		err   error
	}
	// The page reads as a browser does, so the closing handshake
	// completes.
	res := make(chan result, 1)
	go func() {
		var r result
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				r.close, r.err = websocket.CloseStatus(err), err
				res <- r
				return
			}
			var m serverMsg
			if err := json.Unmarshal(data, &m); err != nil {
				r.err = err
				res <- r
				return
			}
			if m.Status != nil {
				r.last = *m.Status
			}
		}
	}()
	ts.SetStatus(Status{State: session.Ended, Stopped: true, Reason: "the invitation is withdrawn"})
	ts.stop()
	r := <-res
	if r.close != websocket.StatusGoingAway {
		t.Errorf("closed with %v (%v), want going away", r.close, r.err)
	}
	if !r.last.Stopped || r.last.Reason != "the invitation is withdrawn" {
		t.Errorf("last status %+v, want stopped", r.last)
	}
	if _, _, err := ts.dial(t, ts.origin); err == nil {
		t.Error("a page connected after Serve returned")
	}
}

// TestStopWhileCallerBusy: Serve returns even if nobody reads Actions
// while a page has clicked.
func TestStopWhileCallerBusy(t *testing.T) {
	ts := startServer(t)
	c, _, _ := ts.open(t)
	for range cap(ts.actions) + 2 {
		send(t, c, `{"type":"take_back"}`)
	}
	closed := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
		}
	}()
	ts.stop()
	if got := <-closed; got != websocket.StatusGoingAway {
		t.Errorf("closed with %v, want going away", got)
	}
}
