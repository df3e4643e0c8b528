// Package localpage serves a page to the local user only: on loopback,
// behind an unguessable secret in the URL path, with Host and Origin
// checks against DNS rebinding and other local origins, and headers that
// keep the page self-contained. The expert's viewer (webview) and the
// novice's page (novicepage) both give control over a desktop to whoever
// loads them, so both stand behind it.
package localpage

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// secretBytes is the entropy of the URL secret: far beyond guessing, even
// by a local process that can try loopback connections quickly.
const secretBytes = 32

// Guard holds one page's secret and checks requests against it.
type Guard struct {
	secret string
}

// NewGuard returns a Guard with a fresh random secret.
func NewGuard() (*Guard, error) {
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("localpage: secret: %w", err)
	}
	return &Guard{secret: base64.RawURLEncoding.EncodeToString(raw)}, nil
}

// Secret returns the secret, for tests; it must never be logged.
func (g *Guard) Secret() string { return g.secret }

// URL returns the page's address on ln: http://127.0.0.1:PORT/s/SECRET/.
// It is a credential.
func (g *Guard) URL(ln net.Listener) string {
	host := ln.Addr().String()
	if ap, err := netip.ParseAddrPort(host); err == nil {
		host = net.JoinHostPort(ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port())))
	}
	return "http://" + host + "/s/" + g.secret + "/"
}

// Authorize checks the request's Host and secret and returns the path
// after /s/SECRET/. Callers answer 404 when it fails, whatever the reason,
// so probing learns nothing.
func (g *Guard) Authorize(r *http.Request) (rest string, ok bool) {
	if !loopbackHost(r.Host) {
		// A name other than localhost that resolves to 127.0.0.1 is
		// DNS rebinding: a web site trying to read the page.
		return "", false
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/s/")
	if !ok {
		return "", false
	}
	// "/s/SECRET" without the slash is refused too: the page's
	// relative URLs need it.
	secret, rest, slash := strings.Cut(p, "/")
	if subtle.ConstantTimeCompare([]byte(secret), []byte(g.secret)) != 1 || !slash {
		return "", false
	}
	return rest, true
}

// Route answers one request the Guard let through; rest is its path
// after /s/SECRET/, and t tracks the page's WebSocket handlers (Accept).
type Route func(t *Tracker, w http.ResponseWriter, r *http.Request, rest string)

// Handler puts route behind the guard: every answer carries the security
// headers, and a request whose Host or secret is wrong is 404, whatever
// the reason, so probing learns nothing.
func (g *Guard) Handler(t *Tracker, route Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSecurityHeaders(w.Header())
		rest, ok := g.Authorize(r)
		if !ok {
			http.NotFound(w, r)
			return
		}
		route(t, w, r, rest)
	})
}

// Serve serves route behind Handler on ln until ctx is done, as the
// package's Serve does. ln must be a TCP listener on a loopback address
// (why says what the page can do, for the error otherwise); Serve closes
// it.
func (g *Guard) Serve(ctx context.Context, ln net.Listener, why string, route Route, log *slog.Logger) error {
	if err := CheckLoopback(ln.Addr(), why); err != nil {
		ln.Close()
		return err
	}
	var t Tracker
	return Serve(ctx, ln, g.Handler(&t, route), &t, log)
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback() && ip.Zone() == ""
}

// CheckLoopback refuses listeners other machines could reach; why says
// what the page can do, for the error message.
func CheckLoopback(a net.Addr, why string) error {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("refusing to serve the page on %s %s: %s, so it only listens on loopback (127.0.0.1 or ::1)", a.Network(), a, why)
	}
	return nil
}

// SetSecurityHeaders keeps the page self-contained: no script or
// connection to anywhere else, no framing (no clickjacking of a consent
// button), and no Referer header that would carry the secret to another
// site.
func SetSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// Serve serves h on ln until ctx is done, then closes every connection,
// waits for the WebSocket handlers t tracks, and returns nil. It closes ln.
// The handlers' request contexts end with ctx, even once hijacked.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, t *Tracker, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// WebSocket handlers run under this context, so cancelling
		// it ends them even though http.Server forgets hijacked
		// connections.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	}
	cancel()
	srv.Close()
	if err == nil {
		<-errc
	}
	t.closeAndWait()
	return err
}

// Tracker counts one Serve call's WebSocket handlers so Serve can wait for
// them: http.Server forgets connections once they are hijacked. The zero
// value is ready to use.
type Tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// add registers a handler; it is false once Serve is shutting down.
func (t *Tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// Done ends a handler that Accept registered.
func (t *Tracker) Done() { t.wg.Done() }

// closeAndWait refuses new handlers and waits for the running ones.
func (t *Tracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// sameOrigin reports whether a WebSocket handshake comes from the page
// itself. Browsers always send Origin on WebSocket handshakes, so a
// missing one is not the page either. The secret in the path already
// keeps other sites out; this also stops a page of another loopback
// origin that learnt the URL.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin != "" && strings.EqualFold(origin, "http://"+r.Host)
}

// SameOrigin reports whether r comes from the page itself (its Origin is
// the page's), for requests other than WebSockets that change something.
func SameOrigin(r *http.Request) bool { return sameOrigin(r) }

// Accept checks the origin, registers the handler with t and upgrades the
// connection. On false it has answered the request and the caller must
// return; on true the caller must call t.Done when the handler ends.
func Accept(t *Tracker, w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions, log *slog.Logger) (*websocket.Conn, bool) {
	if !sameOrigin(r) {
		log.Warn("refused a WebSocket from another origin", "origin", Truncate(r.Header.Get("Origin"), 100))
		http.Error(w, "forbidden", http.StatusForbidden)
		return nil, false
	}
	if !t.add() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return nil, false
	}
	// The origin was checked above, against the Host; coder/websocket's
	// own check would compare the same two.
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		// Accept has answered with the reason.
		log.Debug("WebSocket handshake failed", "err", err)
		t.Done()
		return nil, false
	}
	return c, true
}

// ServeFile serves one embedded file for GET and HEAD; directories and
// missing files are 404 (no listings).
func ServeFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	f, err := fsys.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// ServeContent picks the type from the extension: .js is served as
	// text/javascript, which module scripts require.
	http.ServeContent(w, r, name, time.Time{}, rs)
}

// Truncate cuts s to at most n bytes without splitting a character, for
// log lines and WebSocket close reasons.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
