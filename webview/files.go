package webview

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/assist-project/assist/internal/localpage/upload"
)

// FileBackend is what the page's files panel asks of the session; the
// results come back as published file events.
type FileBackend interface {
	// RequestFiles asks the novice to allow files.
	RequestFiles(ctx context.Context) error
	// SendFile offers the file at path to the novice.
	SendFile(ctx context.Context, path string) error
	// AnswerFile accepts or refuses the incoming file id (32 hex digits).
	AnswerFile(id string, accept bool) error
	// CancelFile stops transfer id.
	CancelFile(id string) error
}

func validFileID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Server) fileMessage(ctx context.Context, sub *subscriber, m message) {
	fail := func(what string, err error) {
		s.log.Warn("file request failed", "what", what, "err", err)
		sub.send(Event{Type: eventError, Text: what + ": " + err.Error(), Time: time.Now()})
	}
	if s.files == nil {
		fail("Files", errors.New("this viewer does not move files"))
		return
	}
	switch m.Type {
	case msgRequestFiles:
		if err := s.files.RequestFiles(ctx); err != nil {
			fail("Could not ask for files", err)
		}
	case msgFileAccept, msgFileRefuse:
		if err := s.files.AnswerFile(m.Text, m.Type == msgFileAccept); err != nil {
			fail("Could not answer", err)
		}
	case msgFileCancel:
		if err := s.files.CancelFile(m.Text); err != nil {
			fail("Could not cancel", err)
		}
	}
}

// serveUpload takes a file from the page (POST, same origin, its name in
// the X-Assist-Name header, percent-encoded), saves it in the upload
// folder under its sanitised name and sends it.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if !upload.Allowed(w, r, s.log) {
		return
	}
	if s.files == nil {
		http.NotFound(w, r)
		return
	}
	path, dir, ok := upload.Save(w, r, s.upDir)
	if !ok {
		return
	}
	if err := s.files.SendFile(r.Context(), path); err != nil {
		os.RemoveAll(dir)
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
