package webview

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/assist-project/assist/internal/localpage"
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
	// GiveBackControl hands control back to the novice (the expert
	// clicked "Give back control"). The change comes back as a state
	// Event.
	GiveBackControl(ctx context.Context) error
	// RequestClipboard asks the novice to share clipboards (the expert
	// clicked "Share clipboard"). The answer comes back as a state Event
	// with Clipboard set or not.
	RequestClipboard(ctx context.Context) error
	// SendChat sends one chat line from the expert to the novice.
	SendChat(ctx context.Context, text string) error
	// Leave ends the session (the expert clicked "Leave"); reason is
	// what the novice is told. The end comes back as an ended Event.
	Leave(reason string)
}

// expertLeft is the reason the novice is given when the expert clicks
// Leave.
const expertLeft = "the expert left"

// Options configure a Server.
type Options struct {
	// NovicesName is shown in the page's header ("Helping NAME").
	NovicesName string
	// Files, if set, gives the page its files panel: Request files,
	// Send a file (uploaded to UploadDir, then sent), and Accept or
	// Refuse for the novice's files.
	Files FileBackend
	// UploadDir holds the files the page uploads before they are sent
	// (kept for a resume); required with Files.
	UploadDir string
	// Logger receives connection events; nil means slog.Default(). The
	// secret never appears in a log line.
	Logger *slog.Logger
}

// Server serves the viewer page of one session.
type Server struct {
	backend Backend
	log     *slog.Logger
	name    string
	guard   *localpage.Guard
	page    *template.Template
	static  fs.FS
	novnc   fs.FS
	shared  fs.FS
	hub     hub
	files   FileBackend
	upDir   string
}

// New returns a Server for one session with a fresh random secret.
func New(b Backend, opts Options) (*Server, error) {
	if b == nil {
		return nil, errors.New("webview: no backend")
	}
	guard, err := localpage.NewGuard()
	if err != nil {
		return nil, fmt.Errorf("webview: %w", err)
	}
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
		guard:   guard,
		page:    page,
		static:  web.Viewer(),
		novnc:   web.NoVNC(),
		shared:  web.Session(),
		files:   opts.Files,
		upDir:   opts.UploadDir,
	}
	if s.files != nil && s.upDir == "" {
		return nil, errors.New("webview: Files needs an UploadDir")
	}
	s.hub.init()
	return s, nil
}

// URL returns the page's address on ln, the listener given to Serve:
// http://127.0.0.1:PORT/s/SECRET/. It is a credential: give it only to
// the expert's browser.
func (s *Server) URL(ln net.Listener) string { return s.guard.URL(ln) }

// Serve serves the page on ln until ctx is done, then closes every
// WebSocket and returns nil. ln must be a TCP listener on a loopback
// address; Serve closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.guard.Serve(ctx, ln, "the page can control the novice's desktop", s.route, s.log); err != nil {
		return fmt.Errorf("webview: %w", err)
	}
	return nil
}

// handler routes every request; anything not under /s/SECRET/ is 404,
// whether the secret is wrong or the path unknown, so probing learns
// nothing.
func (s *Server) handler(t *localpage.Tracker) http.Handler { return s.guard.Handler(t, s.route) }

// route answers a request the guard let through.
func (s *Server) route(t *localpage.Tracker, w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "":
		s.servePage(w, r)
	case rest == "rfb":
		s.serveRFB(t, w, r)
	case rest == "events":
		s.serveEvents(t, w, r)
	case rest == "upload":
		s.serveUpload(w, r)
	case strings.HasPrefix(rest, "novnc/"):
		serveFile(w, r, s.novnc, strings.TrimPrefix(rest, "novnc/"))
	case strings.HasPrefix(rest, "session/"):
		serveFile(w, r, s.shared, strings.TrimPrefix(rest, "session/"))
	default:
		serveFile(w, r, s.static, rest)
	}
}

// servePage renders index.html with the novice's name.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct {
		NovicesName string
		Files       bool
	}{s.name, s.files != nil}
	if err := s.page.Execute(w, data); err != nil {
		s.log.Warn("render page", "err", err)
	}
}

// serveFile serves one embedded file; index.html only through servePage.
func serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	if name == "index.html" {
		http.NotFound(w, r)
		return
	}
	localpage.ServeFile(w, r, fsys, name)
}
