package webview

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
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

// Backend is the session behind the page.
type Backend interface {
	// OpenDisplay returns a fresh RFB byte stream to the novice's
	// desktop; the page's noVNC speaks RFB over it. The server closes
	// it when the page goes.
	OpenDisplay(ctx context.Context) (net.Conn, error)
	// RequestControl asks the novice for control (the expert clicked
	// "Request control"). The answer comes back as a state Event.
	RequestControl(ctx context.Context) error
	// SendChat sends one chat line from the expert to the novice.
	SendChat(ctx context.Context, text string) error
}

// Options configure a Server.
type Options struct {
	// NovicesName is shown in the page's header ("Helping NAME").
	NovicesName string
	// Logger receives connection events; nil means slog.Default(). The
	// secret never appears in a log line.
	Logger *slog.Logger
}

// Server serves the viewer page of one session.
type Server struct {
	backend Backend
	log     *slog.Logger
	name    string
	secret  string
	prefix  string // "/s/SECRET/"
	page    *template.Template
	static  fs.FS
	novnc   fs.FS
	hub     hub
}

// secretBytes is the entropy of the URL secret: far beyond guessing, even
// by a local process that can try loopback connections quickly.
const secretBytes = 32

// New returns a Server for one session with a fresh random secret.
func New(b Backend, opts Options) (*Server, error) {
	if b == nil {
		return nil, errors.New("webview: no backend")
	}
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("webview: secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	page, err := template.ParseFS(web.Viewer(), "index.html")
	if err != nil {
		return nil, fmt.Errorf("webview: page template: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		backend: b,
		log:     log.With("component", "webview"),
		name:    opts.NovicesName,
		secret:  secret,
		prefix:  "/s/" + secret + "/",
		page:    page,
		static:  web.Viewer(),
		novnc:   web.NoVNC(),
	}
	s.hub.init()
	return s, nil
}

// URL returns the page's address on ln, the listener given to Serve:
// http://127.0.0.1:PORT/s/SECRET/. It is a credential: give it only to
// the expert's browser.
func (s *Server) URL(ln net.Listener) string {
	host := ln.Addr().String()
	if ap, err := netip.ParseAddrPort(host); err == nil {
		host = net.JoinHostPort(ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port())))
	}
	return "http://" + host + s.prefix
}

// Serve serves the page on ln until ctx is done, then closes every
// WebSocket and returns nil. ln must be a TCP listener on a loopback
// address; Serve closes it.
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
		err = fmt.Errorf("webview: serve: %w", err)
	}
	cancel()
	srv.Close()
	if err == nil {
		<-errc
	}
	t.closeAndWait()
	return err
}

// checkLoopback refuses listeners other machines could reach: the page
// gives control of the novice's desktop to whoever loads it.
func checkLoopback(a net.Addr) error {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("webview: refusing to serve the viewer on %s %s: the page can control the novice's desktop, so it only listens on loopback (127.0.0.1 or ::1)", a.Network(), a)
	}
	return nil
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
		switch {
		case rest == "":
			s.servePage(w, r)
		case rest == "rfb":
			s.serveRFB(t, w, r)
		case rest == "events":
			s.serveEvents(t, w, r)
		case strings.HasPrefix(rest, "novnc/"):
			serveFile(w, r, s.novnc, strings.TrimPrefix(rest, "novnc/"))
		default:
			serveFile(w, r, s.static, rest)
		}
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
// connection to anywhere else, no framing, and no Referer header that
// would carry the secret to another site.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// servePage renders index.html with the novice's name.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct{ NovicesName string }{s.name}
	if err := s.page.Execute(w, data); err != nil {
		s.log.Warn("render page", "err", err)
	}
}

// serveFile serves one embedded file; directories and missing files are
// 404 (no listings).
func serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !fs.ValidPath(name) || name == "index.html" {
		http.NotFound(w, r)
		return
	}
	f, err := fsys.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// ServeContent picks the type from the extension: .js is served as
	// text/javascript, which module scripts require.
	http.ServeContent(w, r, name, time.Time{}, rs)
}
