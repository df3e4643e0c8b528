package webview

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/localpage"
)

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(newFakeBackend(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoutes(t *testing.T) {
	s := newTestServer(t, Options{NovicesName: "Alice"})
	h := s.handler(new(localpage.Tracker))
	p := "/s/" + s.guard.Secret() + "/"
	wrong := []byte(s.guard.Secret())
	wrong[len(wrong)-1] ^= 1
	tests := []struct {
		name, method, host, path string
		status                   int
		contentType              string // prefix
		body                     string // substring
	}{
		{"page", "GET", "", p, 200, "text/html", "Alice"},
		{"page HEAD", "HEAD", "", p, 200, "text/html", ""},
		{"page POST", "POST", "", p, 405, "", ""},
		{"script", "GET", "", p + "viewer.js", 200, "text/javascript", "assistViewer"},
		{"style", "GET", "", p + "viewer.css", 200, "text/css", ""},
		{"novnc", "GET", "", p + "novnc/core/rfb.js", 200, "text/javascript", "export default class RFB"},
		{"session view", "GET", "", p + "session/view.js", 200, "text/javascript", "export class SessionView"},
		{"session style", "GET", "", p + "session/session.css", 200, "text/css", ".session-view"},
		{"session directory", "GET", "", p + "session/", 404, "", ""},
		{"novnc vendor", "GET", "", p + "novnc/vendor/pako/lib/zlib/inflate.js", 200, "text/javascript", ""},
		{"novnc licence", "GET", "", p + "novnc/LICENSE.txt", 200, "text/plain", ""},
		{"template source", "GET", "", p + "index.html", 404, "", ""},
		{"novnc directory", "GET", "", p + "novnc/core/", 404, "", ""},
		{"novnc directory no slash", "GET", "", p + "novnc/core", 404, "", ""},
		{"novnc outside", "GET", "", p + "novnc/../viewer.js", 404, "", ""},
		{"novnc app", "GET", "", p + "novnc/app/ui.js", 404, "", ""},
		{"novnc package.json", "GET", "", p + "novnc/package.json", 404, "", ""},
		{"dot dot", "GET", "", p + "../../etc/passwd", 404, "", ""},
		{"missing", "GET", "", p + "nope.js", 404, "", ""},
		{"root", "GET", "", "/", 404, "", ""},
		{"favicon", "GET", "", "/favicon.ico", 404, "", ""},
		{"s", "GET", "", "/s/", 404, "", ""},
		{"no slash after secret", "GET", "", "/s/" + s.guard.Secret(), 404, "", ""},
		{"wrong secret", "GET", "", "/s/" + string(wrong) + "/", 404, "", ""},
		{"secret prefix", "GET", "", "/s/" + s.guard.Secret()[:20] + "/", 404, "", ""},
		{"secret longer", "GET", "", "/s/" + s.guard.Secret() + "x/", 404, "", ""},
		{"secret elsewhere", "GET", "", "/x/" + s.guard.Secret() + "/", 404, "", ""},
		{"secret as query", "GET", "", "/?s=" + s.guard.Secret(), 404, "", ""},
		{"localhost", "GET", "localhost:8080", p, 200, "text/html", ""},
		{"ipv6 loopback", "GET", "[::1]:8080", p, 200, "text/html", ""},
		{"rebinding host", "GET", "evil.example:8080", p, 404, "", ""},
		{"lan host", "GET", "192.168.1.2:8080", p, 404, "", ""},
		{"host without port", "GET", "127.0.0.1", p, 404, "", ""},
		{"events without upgrade", "GET", "", p + "events", 403, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.path, w.Code, tt.status)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q...", ct, tt.contentType)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body does not contain %q", tt.body)
			}
			if w.Code == 404 && strings.Contains(w.Body.String(), s.guard.Secret()) {
				t.Errorf("404 page shows the secret")
			}
			for _, h := range []string{"Content-Security-Policy", "Referrer-Policy", "X-Content-Type-Options"} {
				if w.Header().Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
			if rp := w.Header().Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("Referrer-Policy %q: the secret could leak", rp)
			}
		})
	}
}

func TestPageEscapesName(t *testing.T) {
	s := newTestServer(t, Options{NovicesName: `<script>alert("x")</script>&"`})
	w := httptest.NewRecorder()
	s.handler(new(localpage.Tracker)).ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:1/s/"+s.guard.Secret()+"/", nil))
	body := w.Body.String()
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("the novice's name is not escaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert") {
		t.Fatalf("the novice's name is missing:\n%s", body)
	}
}

func TestURLAndSecret(t *testing.T) {
	a := newTestServer(t, Options{})
	b := newTestServer(t, Options{})
	if a.guard.Secret() == b.guard.Secret() {
		t.Fatal("two servers share a secret")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a.guard.Secret())
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, %v; want 32 bytes of base64url", a.guard.Secret(), len(raw), err)
	}
	for _, tt := range []struct{ network, addr, want string }{
		{"tcp", "127.0.0.1:0", `^http://127\.0\.0\.1:[0-9]+/s/[A-Za-z0-9_-]{43}/$`},
		{"tcp6", "[::1]:0", `^http://\[::1\]:[0-9]+/s/[A-Za-z0-9_-]{43}/$`},
	} {
		ln, err := net.Listen(tt.network, tt.addr)
		if err != nil {
			t.Logf("%s: %v", tt.addr, err)
			continue
		}
		u := a.URL(ln)
		ln.Close()
		if !regexp.MustCompile(tt.want).MatchString(u) || !strings.Contains(u, a.guard.Secret()) {
			t.Errorf("URL on %s = %q, want %s", tt.addr, u, tt.want)
		}
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	s := newTestServer(t, Options{})
	var lns []net.Listener
	if ln, err := net.Listen("tcp", "0.0.0.0:0"); err == nil {
		lns = append(lns, ln)
	}
	if ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock")); err == nil {
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		t.Skip("cannot listen on anything but loopback here")
	}
	for _, ln := range lns {
		err := s.Serve(context.Background(), ln)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Serve on %s %s: %v, want a refusal that mentions loopback", ln.Addr().Network(), ln.Addr(), err)
		}
		// Serve closed the listener.
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Errorf("listener %s still open", ln.Addr())
		}
	}
}

func TestNewNeedsBackend(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestWebSocketOrigin(t *testing.T) {
	b := newFakeBackend()
	ts := startServer(t, b, Options{})
	for _, path := range []string{"events", "rfb"} {
		for _, tt := range []struct {
			name, origin string
			ok           bool
		}{
			{"own origin", ts.origin, true},
			{"no origin", "", false},
			{"other site", "http://evil.example", false},
			{"other port", "http://127.0.0.1:1", false},
			{"https", strings.Replace(ts.origin, "http:", "https:", 1), false},
			{"null", "null", false},
		} {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				c, resp, err := ts.dial(t, path, tt.origin)
				if tt.ok {
					if err != nil {
						t.Fatalf("dial from %q: %v", tt.origin, err)
					}
					c.CloseNow()
					return
				}
				if err == nil {
					t.Fatalf("dial from %q succeeded", tt.origin)
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("dial from %q: %v (response %v), want 403", tt.origin, err, resp)
				}
			})
		}
	}
	// Drain the displays the accepted rfb dials opened.
	for len(b.displays) > 0 {
		(<-b.displays).Close()
	}
}
