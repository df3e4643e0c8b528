package upload

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpload: Allowed lets only a POST of the page's own origin through;
// Save keeps the body byte-exact in a folder of its own under the upload
// folder with a sanitised name, and leaves nothing behind when it fails.
func TestUpload(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	body := bytes.Repeat([]byte("assist\x00\xff"), 10_000)
	for _, tt := range []struct {
		name, method, origin, header string
		allowed                      bool
		status                       int    // the answer when not saved
		saved                        string // the file's name when saved
	}{
		{"saved", "POST", "http://127.0.0.1:8080", url.PathEscape("report.pdf"), true, 0, "report.pdf"},
		{"no origin", "POST", "", "a", false, http.StatusForbidden, ""},
		{"path escape", "POST", "http://127.0.0.1:8080", url.PathEscape("../../.bashrc"), true, 0, "bashrc"},
		{"GET", "GET", "http://127.0.0.1:8080", "a", false, http.StatusMethodNotAllowed, ""},
		{"other origin", "POST", "http://127.0.0.1:9999", "a", false, http.StatusForbidden, ""},
		{"other site", "POST", "https://evil.example", "a", false, http.StatusForbidden, ""},
		{"no name", "POST", "http://127.0.0.1:8080", "", true, http.StatusBadRequest, ""},
		{"bad escape", "POST", "http://127.0.0.1:8080", "%zz", true, http.StatusBadRequest, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			upDir := filepath.Join(t.TempDir(), "uploads")
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080/s/x/upload", bytes.NewReader(body))
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			req.Header.Set("X-Assist-Name", tt.header)
			w := httptest.NewRecorder()
			if got := Allowed(w, req, log); got != tt.allowed {
				t.Fatalf("Allowed = %v, want %v", got, tt.allowed)
			}
			if !tt.allowed {
				if w.Code != tt.status {
					t.Errorf("status %d, want %d", w.Code, tt.status)
				}
				return
			}
			path, dir, ok := Save(w, req, upDir)
			if tt.saved == "" {
				if ok || w.Code != tt.status {
					t.Fatalf("Save: ok %v status %d, want false %d", ok, w.Code, tt.status)
				}
				entries, _ := os.ReadDir(upDir)
				if len(entries) != 0 {
					t.Errorf("the upload folder holds %d entries after a refusal", len(entries))
				}
				return
			}
			if !ok {
				t.Fatalf("Save refused: %d %s", w.Code, w.Body)
			}
			if filepath.Dir(path) != dir || filepath.Dir(dir) != upDir || filepath.Base(path) != tt.saved {
				t.Errorf("saved at %s in %s, want %s in a folder of its own under %s", path, dir, tt.saved, upDir)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("the saved file differs (err %v, %d bytes)", err, len(got))
			}
			if fi, err := os.Stat(upDir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("upload folder: %v %v, want 0700", fi.Mode(), err)
			}
		})
	}
}

// TestSaveFolderFails: a folder that cannot be made is a 500 that says so.
func TestSaveFolderFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "http://127.0.0.1:8080/s/x/upload", strings.NewReader("x"))
	req.Header.Set("X-Assist-Name", "a")
	w := httptest.NewRecorder()
	if _, _, ok := Save(w, req, filepath.Join(file, "uploads")); ok || w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "Could not keep the file") {
		t.Errorf("Save under a file: ok %v, %d %q", ok, w.Code, w.Body)
	}
}
