package novicepage

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpload: a file the page POSTs to upload reaches the caller as
// ActSendFile, byte-exact, in a folder of its own under UploadDir with a
// sanitised name; the caller's Reply is the answer. Other origins, other
// methods and a page without UploadDir are refused.
func TestUpload(t *testing.T) {
	dir := t.TempDir()
	ts := startServerOpts(t, Options{UploadDir: dir})
	// postRaw may run on a goroutine of its own: it fails no test.
	postRaw := func(origin, name string, body []byte) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, ts.url+"upload", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("X-Assist-Name", url.PathEscape(name))
		return http.DefaultClient.Do(req)
	}
	post := func(t *testing.T, origin, name string, body []byte) *http.Response {
		t.Helper()
		resp, err := postRaw(origin, name, body)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	body := bytes.Repeat([]byte("assist\x00\xff"), 100_000)

	for _, tt := range []struct {
		name, sent, saved, reply string
		status                   int
	}{
		{"sent", "report.pdf", "report.pdf", "", http.StatusNoContent},
		{"path escape", "../../.bashrc", "bashrc", "", http.StatusNoContent},
		{"refused", "notes.txt", "notes.txt", "Files are not allowed: click Allow files first.", http.StatusConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := postRaw(ts.origin, tt.sent, body)
				done <- result{resp, err}
			}()
			a := ts.action(t)
			if a.Kind != ActSendFile {
				t.Fatalf("action %v, want send_file", a.Kind)
			}
			if filepath.Base(a.Path) != tt.saved || filepath.Dir(filepath.Dir(a.Path)) != dir {
				t.Errorf("the file is kept as %s, want %s in a folder of its own under %s", a.Path, tt.saved, dir)
			}
			got, err := os.ReadFile(a.Path)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("the kept file has %d bytes (%v), want the %d sent", len(got), err, len(body))
			}
			if fi, err := os.Stat(a.Path); err == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("the kept file's mode is %v, want 0600", fi.Mode().Perm())
			}
			a.Reply(tt.reply)
			r := <-done
			if r.err != nil {
				t.Fatalf("upload: %v", r.err)
			}
			resp := r.resp
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.reply != "" {
				b, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(b), tt.reply) {
					t.Errorf("the answer %q does not give the reason %q", b, tt.reply)
				}
				if _, err := os.Stat(a.Path); !os.IsNotExist(err) {
					t.Errorf("a file that was not sent is still kept: %v", err)
				}
			}
		})
	}

	for _, tt := range []struct {
		name, origin string
		status       int
	}{
		{"other origin", "http://evil.example", http.StatusForbidden},
		{"no origin", "", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if resp := post(t, tt.origin, "x.txt", []byte("x")); resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	t.Run("no name", func(t *testing.T) {
		if resp := post(t, ts.origin, "", []byte("x")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(ts.url + "upload")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", resp.StatusCode)
		}
	})
	t.Run("without UploadDir", func(t *testing.T) {
		plain := startServerOpts(t, Options{})
		req, _ := http.NewRequest(http.MethodPost, plain.url+"upload", strings.NewReader("x"))
		req.Header.Set("Origin", plain.origin)
		req.Header.Set("X-Assist-Name", "x.txt")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
	// Everything refused left nothing behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the upload folder holds %d entries, want the 2 sent", len(entries))
	}
}
