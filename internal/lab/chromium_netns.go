package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StartChromium starts headless Chromium as the package-level
// StartChromium does, but inside namespace ns, so that the browser's
// network (pages, WebSockets, WebRTC's candidates) is that namespace's.
//
// chromedp drives the browser over --remote-debugging-pipe: file
// descriptors 3 and 4, which `ip netns exec` passes on untouched, so the
// DevTools connection needs no port that would have to cross the
// namespace boundary. The browser is started by a wrapper script that
// execs `ip netns exec NS chromium`; `ip netns exec` execs too, so the
// process chromedp stops is Chromium itself. Its helpers (zygote,
// renderers, GPU) are in ns as well, and the lab's teardown ends any of
// them still there.
//
// Chromium watches its namespace's addresses and aborts every request in
// flight (net::ERR_NETWORK_CHANGED) when one changes. A lab's interfaces
// are new, and their IPv6 link-local addresses leave the tentative state
// (duplicate address detection) a second or two after the link comes up,
// which makes a page that is loading then fail half-loaded; so this waits
// for the namespace's addresses to settle first.
func (n *Net) StartChromium(t testing.TB, ns string, w, h int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	exe := chromium(t)
	n.waitAddrsSettled(t, ns)
	wrapper := filepath.Join(t.TempDir(), "chromium-in-"+ns)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", shellQuote(ns), shellQuote(exe))
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatalf("lab: chromium wrapper: %v", err)
	}
	// Options apply in order: this ExecPath replaces StartChromium's.
	return StartChromium(t, w, h, append(extra, chromedp.ExecPath(wrapper))...)
}

// waitAddrsSettled waits until no address in namespace ns is tentative.
func (n *Net) waitAddrsSettled(t testing.TB, ns string) {
	t.Helper()
	var out []byte
	settled := waitFor(10*time.Second, func() bool {
		var err error
		out, err = exec.Command("ip", "-o", "-n", ns, "addr", "show", "tentative").CombinedOutput()
		return err == nil && len(bytes.TrimSpace(out)) == 0
	})
	if !settled {
		t.Fatalf("lab: addresses in %s still tentative after 10 s: %s", ns, out)
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SPKIPin connects to the TLS server at addr from inside namespace ns,
// checking its certificate with cfg (e.g. a configuration that pins the
// fingerprint the server printed), and returns the base64 SHA-256 of the
// certificate's public key: the form of Chromium's
// --ignore-certificate-errors-spki-list, which makes the browser trust
// exactly that certificate.
func (n *Net) SPKIPin(t testing.TB, ns, addr string, cfg *tls.Config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	raw, err := n.Dial(ctx, ns, "tcp", addr)
	if err != nil {
		t.Fatalf("lab: connect to %s from %s: %v", addr, ns, err)
	}
	defer raw.Close()
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatalf("lab: TLS handshake with %s: %v", addr, err)
	}
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
