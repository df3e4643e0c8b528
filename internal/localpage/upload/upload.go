// Package upload receives the files a local page (the expert's viewer,
// the novice's page) sends to its own server: one POST a file, from the
// page's own origin, its name in the X-Assist-Name header,
// percent-encoded. Each file is kept in a folder of its own under the
// page's upload folder, under its sanitised name; what happens to it next
// is the page's.
package upload

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/assist-project/assist/filetransfer"
	"github.com/assist-project/assist/internal/localpage"
)

// Allowed answers a request that is not a POST from the page's own origin
// and returns false; it returns true, writing nothing, for one that is.
// It is apart from Save so that a page may refuse uploads of its own
// (no files) after these checks, as before.
func Allowed(w http.ResponseWriter, r *http.Request, log *slog.Logger) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	// The secret keeps other sites out; this also stops a page of
	// another loopback origin that learnt the URL.
	if !localpage.SameOrigin(r) {
		log.Warn("refused an upload from another origin", "origin", localpage.Truncate(r.Header.Get("Origin"), 100))
		http.Error(w, "forbidden", http.StatusForbidden)
		return false
	}
	return true
}

// Save keeps the request's body in a new folder under upDir (made 0700
// if missing) and returns the file's path and that folder, which the
// caller removes when it does not keep the file. When ok is false the
// answer has been written and nothing is left on disk.
func Save(w http.ResponseWriter, r *http.Request, upDir string) (path, dir string, ok bool) {
	name, err := url.PathUnescape(r.Header.Get("X-Assist-Name"))
	if err != nil || name == "" {
		http.Error(w, "the file has no name", http.StatusBadRequest)
		return "", "", false
	}
	// The name is only the page's word for it: it must not reach
	// outside the folder, hide itself or be a device.
	name = filetransfer.SanitizeName(name)
	if err := os.MkdirAll(upDir, 0o700); err != nil {
		http.Error(w, "Could not keep the file: "+err.Error(), http.StatusInternalServerError)
		return "", "", false
	}
	dir, err = os.MkdirTemp(upDir, "up")
	if err != nil {
		http.Error(w, "Could not keep the file: "+err.Error(), http.StatusInternalServerError)
		return "", "", false
	}
	path = filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		http.Error(w, "Could not keep the file: "+err.Error(), http.StatusInternalServerError)
		return "", "", false
	}
	_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, filetransfer.MaxSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(dir)
		http.Error(w, "The file did not arrive whole: "+err.Error(), http.StatusBadRequest)
		return "", "", false
	}
	return path, dir, true
}
