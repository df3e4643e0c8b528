package novicepage

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/assist-project/assist/web"
)

// Options configure a Server.
type Options struct {
	// Logger receives connection events; nil means slog.Default(). The
	// secret never appears in a log line.
	Logger *slog.Logger
}

// Server serves the novice's page for one run of assist invite.
type Server struct {
	log     *slog.Logger
	secret  string
	prefix  string // "/s/SECRET/"
	files   fs.FS
	hub     hub
	actions chan Action
}

// secretBytes is the entropy of the URL secret: far beyond guessing, even
// by a local process that can try loopback connections quickly.
const secretBytes = 32

// New returns a Server with a fresh random secret and an empty status.
func New(opts Options) (*Server, error) {
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("novicepage: secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:    log.With("component", "novicepage"),
		secret: secret,
		prefix: "/s/" + secret + "/",
		files:  web.Novice(),
		// A little room, so a click is not held up while the caller
		// is busy printing; beyond that the page's reader waits.
		actions: make(chan Action, 8),
	}
	s.hub.init()
	return s, nil
}

// URL returns the page's address on ln, the listener given to Serve:
// http://127.0.0.1:PORT/s/SECRET/. It is a credential: whoever loads it
// can let an expert control the desktop.
func (s *Server) URL(ln net.Listener) string {
	host := ln.Addr().String()
	if ap, err := netip.ParseAddrPort(host); err == nil {
		host = net.JoinHostPort(ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port())))
	}
	return "http://" + host + s.prefix
}

// SetStatus replaces what every open page shows.
func (s *Server) SetStatus(st Status) { s.hub.setStatus(st) }

// AddChat adds a line to the chat every page shows; mine marks the
// novice's own lines. The history keeps the last 200 lines.
func (s *Server) AddChat(from string, mine bool, text string) {
	s.hub.addChat(ChatLine{From: from, Mine: mine, Text: text, Time: time.Now()})
}

// Actions delivers what the novice did on a page. The caller must keep
// reading it while Serve runs: a page's further clicks wait meanwhile.
func (s *Server) Actions() <-chan Action { return s.actions }

// Action is one thing the novice did on a page.
type Action struct {
	Kind     ActionKind
	Question uint64 // ActAnswer: the Question.ID answered
	Allow    bool   // ActAnswer
	Text     string // ActChat: checked, one line, at most MaxChat bytes

	hub  *hub
	page *page
}

// Reply shows text on the page the action came from only (for example,
// why it had no effect). It does nothing if that page has gone.
func (a Action) Reply(text string) {
	if a.hub != nil {
		a.hub.notify(a.page, text)
	}
}

// Serve serves the page on ln until ctx is done, then sends every open
// page the latest status, closes their connections and returns nil. ln
// must be a TCP listener on a loopback address; Serve closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := checkLoopback(ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var t tracker
	srv := &http.Server{
		Handler:           s.handler(&t),
		ReadHeaderTimeout: 10 * time.Second,
		// WebSocket handlers run under this context, so cancelling
		// it ends them even though http.Server forgets hijacked
		// connections.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("novicepage: serve: %w", err)
	}
	cancel()
	srv.Close()
	if err == nil {
		<-errc
	}
	t.closeAndWait()
	return err
}

// checkLoopback refuses listeners other machines could reach.
func checkLoopback(a net.Addr) error {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("novicepage: refusing to serve the page on %s %s: it can let an expert control this desktop, so it only listens on loopback (127.0.0.1 or ::1)", a.Network(), a)
	}
	return nil
}

// files are the only paths under /s/SECRET/ besides "events".
var files = map[string]string{
	"":           "index.html",
	"novice.js":  "novice.js",
	"novice.css": "novice.css",
}

// handler routes every request; anything not under /s/SECRET/ is 404,
// whether the secret is wrong or the path unknown, so probing learns
// nothing.
func (s *Server) handler(t *tracker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		rest, ok := s.authorize(r)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rest == "events" {
			s.serveEvents(t, w, r)
			return
		}
		name, ok := files[rest]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.serveFile(w, r, name)
	})
}

// authorize checks the request's Host and secret and returns the path
// after /s/SECRET/.
func (s *Server) authorize(r *http.Request) (rest string, ok bool) {
	if !loopbackHost(r.Host) {
		// A name other than localhost that resolves to 127.0.0.1 is
		// DNS rebinding: a web site trying to read the page.
		return "", false
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/s/")
	if !ok {
		return "", false
	}
	// "/s/SECRET" without the slash is 404 too: the page's relative
	// URLs need it.
	secret, rest, slash := strings.Cut(p, "/")
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret)) != 1 || !slash {
		return "", false
	}
	return rest, true
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback() && ip.Zone() == ""
}

// setSecurityHeaders keeps the page self-contained: no script or
// connection to anywhere else, no framing (no clickjacking of Allow), and
// no Referer header that would carry the secret to another site.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// serveFile serves one embedded file.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, err := s.files.Open(name)
	if err != nil {
		s.log.Error("embedded page file missing", "name", name, "err", err)
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// ServeContent picks the type from the extension: .js is served as
	// text/javascript, which module scripts require.
	http.ServeContent(w, r, name, time.Time{}, rs)
}
