package novicepage

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/assist-project/assist/web"
)

// Options configure a Server.
type Options struct {
	// Logger receives connection events; nil means slog.Default(). The
	// secret never appears in a log line.
	Logger *slog.Logger
	// App makes it the novice's app (`assist` with no arguments): the
	// page also offers Get help, the contacts with Ask for help, and for
	// an invitation a QR code, Send by e-mail and Save as file. Without
	// it, the app's actions close the page's connection as garbage.
	App bool
	// UploadDir is where files the novice picks on the page to send are
	// kept (each in a folder of its own) until the caller is done with
	// them; the caller removes it. "" refuses such files.
	UploadDir string
}

// Server serves the novice's page for one run of assist invite.
type Server struct {
	log     *slog.Logger
	guard   *localpage.Guard
	files   fs.FS
	hub     hub
	actions chan Action
	app     bool
	upDir   string
}

// New returns a Server with a fresh random secret and an empty status.
func New(opts Options) (*Server, error) {
	guard, err := localpage.NewGuard()
	if err != nil {
		return nil, fmt.Errorf("novicepage: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:   log.With("component", "novicepage"),
		guard: guard,
		files: web.Novice(),
		// A little room, so a click is not held up while the caller
		// is busy printing; beyond that the page's reader waits.
		actions: make(chan Action, 8),
		app:     opts.App,
		upDir:   opts.UploadDir,
	}
	s.hub.init()
	s.hub.log = s.log.Warn
	if opts.App {
		// The page tells the app's look from the invitation's by this.
		s.hub.app = &App{}
	}
	return s, nil
}

// URL returns the page's address on ln, the listener given to Serve:
// http://127.0.0.1:PORT/s/SECRET/. It is a credential: whoever loads it
// can let an expert control the desktop.
func (s *Server) URL(ln net.Listener) string { return s.guard.URL(ln) }

// SetStatus replaces what every open page shows.
func (s *Server) SetStatus(st Status) { s.hub.setStatus(st) }

// AddChat adds a line to the chat every page shows; mine marks the
// novice's own lines. The history keeps the last 200 lines.
func (s *Server) AddChat(from string, mine bool, text string) {
	s.hub.addChat(ChatLine{From: from, Mine: mine, Text: text, Time: time.Now()})
}

// SetApp replaces the app's part of what every page shows (Options.App).
func (s *Server) SetApp(a App) { s.hub.setApp(a) }

// FileName is the name the invitation file downloads under.
const FileName = "invitation.assist"

// SetFile sets the invitation file the page offers to save (Save as file);
// nil withdraws it. It holds no password.
func (s *Server) SetFile(data []byte) { s.hub.setFile(data) }

// Actions delivers what the novice did on a page. The caller must keep
// reading it while Serve runs: a page's further clicks wait meanwhile.
func (s *Server) Actions() <-chan Action { return s.actions }

// Action is one thing the novice did on a page.
type Action struct {
	Kind     ActionKind
	Question uint64 // ActAnswer: the Question.ID answered
	Allow    bool   // ActAnswer; ActClipboard: share (true) or stop
	Text     string // ActChat: checked, one line, at most MaxChat bytes
	User     string // ActAsk: an account name (messenger.ValidUser)
	To       string // ActEmail: the address typed, "" for none
	// Path is, for ActSendFile, the file the novice picked, kept in
	// Options.UploadDir under its sanitised name.
	Path string

	hub   *hub
	page  *page
	reply chan<- string // ActSendFile: the upload waits for the answer
}

// Reply shows text on the page the action came from only (for example,
// why it had no effect). It does nothing if that page has gone.
//
// ActSendFile must be answered with Reply: "" once the file is on its way,
// else why it is not (the page shows it); the page's upload waits for it.
func (a Action) Reply(text string) {
	if a.reply != nil {
		select {
		case a.reply <- text:
		default: // answered already
		}
		return
	}
	if a.hub != nil {
		a.hub.notify(a.page, text)
	}
}

// Serve serves the page on ln until ctx is done, then sends every open
// page the latest status, closes their connections and returns nil. ln
// must be a TCP listener on a loopback address; Serve closes it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.guard.Serve(ctx, ln, "it can let an expert control this desktop", s.route, s.log); err != nil {
		return fmt.Errorf("novicepage: %w", err)
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
func (s *Server) handler(t *localpage.Tracker) http.Handler { return s.guard.Handler(t, s.route) }

// route answers a request the guard let through.
func (s *Server) route(t *localpage.Tracker, w http.ResponseWriter, r *http.Request, rest string) {
	if rest == "events" {
		s.serveEvents(t, w, r)
		return
	}
	if rest == "upload" && s.upDir != "" {
		s.serveUpload(w, r)
		return
	}
	if rest == FileName && s.app {
		s.serveFile(w, r)
		return
	}
	name, ok := files[rest]
	if !ok {
		http.NotFound(w, r)
		return
	}
	localpage.ServeFile(w, r, s.files, name)
}

// serveFile answers Save as file with the current invitation, as a
// download.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	data := s.hub.getFile()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-assist-invitation")
	w.Header().Set("Content-Disposition", `attachment; filename="`+FileName+`"`)
	http.ServeContent(w, r, FileName, time.Time{}, bytes.NewReader(data))
}
