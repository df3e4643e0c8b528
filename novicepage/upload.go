package novicepage

import (
	"net/http"
	"os"
	"time"

	"github.com/assist-project/assist/internal/localpage/upload"
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
	if !upload.Allowed(w, r, s.log) {
		return
	}
	path, dir, ok := upload.Save(w, r, s.upDir)
	if !ok {
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
