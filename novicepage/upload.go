package novicepage

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/internal/localpage"
)

// uploadAnswerTimeout bounds the wait for the caller's answer to an
// uploaded file (ActSendFile): its loop answers at once, so only a stuck
// caller takes this long.
const uploadAnswerTimeout = 30 * time.Second

// serveUpload takes a file the novice picked or dropped on the page (POST,
// same origin, its name in the X-Assist-Name header, percent-encoded),
// keeps it in a folder of its own under the upload folder, and hands it to
// the caller as ActSendFile. The answer is the caller's Reply: 204 when the
// file is on its way, else 409 with the reason as text.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// The secret keeps other sites out; this also stops a page of
	// another loopback origin that learnt the URL.
	if !localpage.SameOrigin(r) {
		s.log.Warn("refused an upload from another origin", "origin", localpage.Truncate(r.Header.Get("Origin"), 100))
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	name, err := url.PathUnescape(r.Header.Get("X-Assist-Name"))
	if err != nil || name == "" {
		http.Error(w, "the file has no name", http.StatusBadRequest)
		return
	}
	// The name is only the page's word for it: it must not reach
	// outside the folder, hide itself or be a device.
	name = filetransfer.SanitizeName(name)
	if err := os.MkdirAll(s.upDir, 0o700); err != nil {
		http.Error(w, "Could not keep the file: "+err.Error(), http.StatusInternalServerError)
		return
	}
	dir, err := os.MkdirTemp(s.upDir, "up")
	if err != nil {
		http.Error(w, "Could not keep the file: "+err.Error(), http.StatusInternalServerError)
		return
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		http.Error(w, "Could not keep the file: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, filetransfer.MaxSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(dir)
		http.Error(w, "The file did not arrive whole: "+err.Error(), http.StatusBadRequest)
		return
	}
	// The file stays after it is sent: sending it again after a broken
	// connection resumes from the part the helper holds. The caller
	// removes the upload folder when it is done.
	reply := make(chan string, 1)
	a := Action{Kind: ActSendFile, Path: path, reply: reply}
	select {
	case s.actions <- a:
	case <-r.Context().Done():
		os.RemoveAll(dir)
		return
	}
	t := time.NewTimer(uploadAnswerTimeout)
	defer t.Stop()
	select {
	case why := <-reply:
		if why != "" {
			os.RemoveAll(dir)
			http.Error(w, why, http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case <-t.C:
		http.Error(w, "Assist did not take the file: try again.", http.StatusServiceUnavailable)
	case <-r.Context().Done():
	}
}
