package web

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExpertApp(t *testing.T) {
	app := ExpertApp()
	get := func(path, encoding string) *http.Response {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if encoding != "" {
			r.Header.Set("Accept-Encoding", encoding)
		}
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		return w.Result()
	}
	for _, path := range []string{"/", "/expert.js", "/signal.js", "/messenger.js", "/passkey.js", "/people.js", "/store.js", "/novnc/core/rfb.js",
		"/session/view.js", "/session/screen.js", "/session/scaled.js", "/session/words.js", "/session/session.css"} {
		res := get(path, "")
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, res.Status)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'wasm-unsafe-eval'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if res := get("/assist.wasm.gz", ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /assist.wasm.gz: %s, want 404 (it is served as /assist.wasm)", res.Status)
	}
	post := httptest.NewRecorder()
	app.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/", nil))
	if post.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", post.Code)
	}

	if _, err := fs.Stat(Expert(), "assist.wasm.gz"); err != nil {
		res := get("/assist.wasm", "gzip")
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "scripts/setup.sh") {
			t.Errorf("GET /assist.wasm without the build: %s %q", res.Status, body)
		}
		t.Skip("assist.wasm.gz is not built (scripts/setup.sh builds it): the rest needs it")
	}
	gz := get("/assist.wasm", "br, gzip;q=0.8")
	body, _ := io.ReadAll(gz.Body)
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("Content-Type") != "application/wasm" || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Errorf("GET /assist.wasm (gzip): %v, %d bytes starting %x", gz.Header, len(body), body[:min(4, len(body))])
	}
	plain := get("/assist.wasm", "identity")
	body, _ = io.ReadAll(plain.Body)
	if plain.Header.Get("Content-Encoding") != "" || !bytes.HasPrefix(body, []byte("\x00asm")) {
		t.Errorf("GET /assist.wasm (identity): %v, starts %x", plain.Header, body[:min(4, len(body))])
	}
	r := httptest.NewRequest(http.MethodGet, "/assist.wasm", nil)
	r.Header.Set("If-None-Match", gz.Header.Get("ETag"))
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified {
		t.Errorf("GET /assist.wasm with its ETag: %d, want 304", w.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"gzip, deflate, br, zstd": true,
		"br;q=1.0, GZIP;q=0.5":    true,
		"gzip;q=0":                false,
		"gzip; q=0.000":           false,
		"deflate":                 false,
		"x-gzip":                  false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
