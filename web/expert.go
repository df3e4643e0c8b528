package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// The expert's web app. assist.wasm.gz (cmd/assist-wasm, gzipped) and
// wasm_exec.js (Go's loader for it) are build outputs of scripts/setup.sh;
// without them the page loads and says the app was not built.
//
//go:embed expert
var expertFiles embed.FS

// Expert returns the expert's web app: index.html, its scripts and style
// sheet, wasm_exec.js and assist.wasm.gz.
func Expert() fs.FS { return sub(expertFiles, "expert") }

// expertCSP lets the page run its own scripts and WebAssembly and talk to
// its own server (the signalling WebSocket), and nothing else.
const expertCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ExpertApp serves the expert's web app at / for `assist serve`: the page,
// noVNC under /novnc/, the session view under /session/, and the WebAssembly program at /assist.wasm, sent
// gzip-encoded to browsers that accept it (about a third of its size).
func ExpertApp() http.Handler {
	app := Expert()
	files := http.FileServerFS(app)
	novnc := http.StripPrefix("/novnc/", http.FileServerFS(NoVNC()))
	shared := http.StripPrefix("/session/", http.FileServerFS(Session()))
	wasmGz, _ := fs.ReadFile(app, "assist.wasm.gz")
	sum := sha256.Sum256(wasmGz)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", expertCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// A new server version must reach the browser at once: the page
		// and the program speak the same protocol as the server's peers.
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/assist.wasm":
			serveWasm(w, r, wasmGz, etag)
		case r.URL.Path == "/assist.wasm.gz":
			http.NotFound(w, r)
		case strings.HasPrefix(r.URL.Path, "/novnc/"):
			novnc.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/session/"):
			shared.ServeHTTP(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	})
}

// serveWasm sends the gzipped program as it is to a browser that accepts
// gzip (all do), and unpacks it for a client that does not.
func serveWasm(w http.ResponseWriter, r *http.Request, gz []byte, etag string) {
	if len(gz) == 0 {
		http.Error(w, "the expert's web app was not built with this server: run scripts/setup.sh, then build assist again", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/wasm")
	h.Set("ETag", etag)
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(gz)))
		if r.Method != http.MethodHead {
			w.Write(gz)
		}
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		http.Error(w, "corrupt web app", http.StatusInternalServerError)
		return
	}
	if r.Method != http.MethodHead {
		io.Copy(w, zr)
	}
}

// acceptsGzip reads an Accept-Encoding header well enough for browsers:
// gzip listed and not refused with q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
