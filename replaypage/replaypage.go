// Package replaypage is the browser page of assist replay --browser: a
// recording played in noVNC with Play, Pause and a seek bar, on loopback.
// It holds no playback: the caller's Player decodes the recording (where
// the audit identity is: the server that stores recordings cannot read
// them) and serves the replayed desktop over RFB.
//
// Whoever loads the page sees the recording, so it is guarded like the
// novice's page (package internal/localpage): loopback only, a per-run
// secret in every URL (http://127.0.0.1:PORT/s/SECRET/), 404 elsewhere,
// the Host must name loopback, the WebSocket and the POSTs must come from
// the page's own origin, and no Referer leaves the page.
//
// Under /s/SECRET/ the page uses
//   - rfb: a binary WebSocket, the replayed desktop over RFB;
//   - state: GET, {"at":MS,"length":MS,"playing":BOOL,"epoch":N,
//     "recorded":TEXT}; epoch changes when the picture restarts (a seek
//     backwards), and the page then connects rfb again;
//   - control: POST, {"action":"play"|"pause"} or
//     {"action":"seek","to":MS}; anything else is 400.
package replaypage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/assist-project/assist/internal/localpage"
	"github.com/assist-project/assist/web"
)

// State is where playback stands.
type State struct {
	At, Length time.Duration
	Playing    bool
	// Epoch counts restarts of the picture (a seek backwards replays
	// from the start): a page connected to an older one reconnects.
	Epoch uint64
	// Recorded says when the session was recorded, as the page shows it.
	Recorded string
}

// Player is the caller's playback.
type Player interface {
	// OpenDisplay connects to the replayed desktop's RFB server.
	OpenDisplay(ctx context.Context) (net.Conn, error)
	State() State
	Play()
	Pause()
	// Seek moves playback to at.
	Seek(at time.Duration)
}

// Server serves the page for one Player.
type Server struct {
	log    *slog.Logger
	guard  *localpage.Guard
	player Player
	files  map[string]fs.FS
}

// New returns a Server with a fresh secret.
func New(p Player, log *slog.Logger) (*Server, error) {
	guard, err := localpage.NewGuard()
	if err != nil {
		return nil, fmt.Errorf("replaypage: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log.With("component", "replaypage"), guard: guard, player: p,
		files: map[string]fs.FS{"": web.Replay(), "session/": web.Session(), "novnc/": web.NoVNC()}}, nil
}

// URL is the page's address on ln; it is a credential.
func (s *Server) URL(ln net.Listener) string { return s.guard.URL(ln) }

// Serve serves on ln, a loopback TCP listener, until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.guard.Serve(ctx, ln, "it shows a recording", s.route, s.log); err != nil {
		return fmt.Errorf("replaypage: %w", err)
	}
	return nil
}

// route answers a request the guard let through.
func (s *Server) route(t *localpage.Tracker, w http.ResponseWriter, r *http.Request, rest string) {
	switch rest {
	case "rfb":
		s.serveRFB(t, w, r)
		return
	case "state":
		s.serveState(w, r)
		return
	case "control":
		s.serveControl(w, r)
		return
	case "":
		rest = "index.html"
	}
	for _, prefix := range []string{"session/", "novnc/"} {
		if name, ok := strings.CutPrefix(rest, prefix); ok {
			localpage.ServeFile(w, r, s.files[prefix], name)
			return
		}
	}
	if rest != "index.html" && rest != "replay.js" && rest != "replay.css" {
		http.NotFound(w, r)
		return
	}
	localpage.ServeFile(w, r, s.files[""], rest)
}

type stateJSON struct {
	At       int64  `json:"at"`
	Length   int64  `json:"length"`
	Playing  bool   `json:"playing"`
	Epoch    uint64 `json:"epoch"`
	Recorded string `json:"recorded,omitempty"`
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	st := s.player.State()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(stateJSON{At: st.At.Milliseconds(), Length: st.Length.Milliseconds(), Playing: st.Playing, Epoch: st.Epoch, Recorded: st.Recorded})
}

// maxControl bounds a control request's body.
const maxControl = 256

// controlJSON is a control request.
type controlJSON struct {
	Action string `json:"action"`
	To     *int64 `json:"to,omitempty"`
}

// parseControl checks one control request: a known action, and a
// position for seek (0 or more milliseconds) and for nothing else.
func parseControl(body []byte) (controlJSON, error) {
	var c controlJSON
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("not a control request: %w", err)
	}
	if dec.More() {
		return c, errors.New("data after the request")
	}
	switch c.Action {
	case "play", "pause":
		if c.To != nil {
			return c, errors.New(c.Action + " takes no position")
		}
	case "seek":
		if c.To == nil || *c.To < 0 || *c.To > int64(24*time.Hour/time.Millisecond) {
			return c, errors.New("seek needs a position of 0 to 24 hours in milliseconds")
		}
	default:
		return c, errors.New("unknown action")
	}
	return c, nil
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// The secret is in the path, but another site's form could still
	// post blind: only the page's own origin controls.
	if !localpage.SameOrigin(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControl+1))
	if err != nil || len(body) > maxControl {
		http.Error(w, "request too large", http.StatusBadRequest)
		return
	}
	c, err := parseControl(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch c.Action {
	case "play":
		s.player.Play()
	case "pause":
		s.player.Pause()
	case "seek":
		s.player.Seek(time.Duration(*c.To) * time.Millisecond)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveRFB(t *localpage.Tracker, w http.ResponseWriter, r *http.Request) {
	if err := localpage.ServeDisplay(t, w, r, "the recording", s.player.OpenDisplay, s.log); err != nil {
		s.log.Warn("cannot open the replayed display for the page", "err", err)
	}
}
