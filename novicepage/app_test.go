package novicepage

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestQRDataURL: the QR code decodes (zbarimg) to exactly the text, for a
// short browser address and for a long assist:// link.
func TestQRDataURL(t *testing.T) {
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Skip("zbarimg not installed (Debian: zbar-tools)")
	}
	for _, text := range []string{
		"https://assist.example:8443/#1234-apple-river",
		"assist://invite?d=" + strings.Repeat("eyJ2ZXJzaW9uIjoxLCJpZCI6Ik", 40),
	} {
		start := time.Now()
		u, err := QRDataURL(text)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("QR code of %d characters: %d bytes as a data: URL, made in %v", len(text), len(u), time.Since(start))
		b64, ok := strings.CutPrefix(u, "data:image/png;base64,")
		if !ok {
			t.Fatalf("QRDataURL = %.40q, want a PNG data: URL", u)
		}
		png, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(f, png, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sbinary", f).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		if got := strings.TrimRight(string(out), "\n"); got != text {
			t.Errorf("the QR code holds %q, want %q", got, text)
		}
	}
}

// TestAppStatus: the app's part and the QR code of the link travel in the
// status; the invitation file downloads only while set, and only from the
// app's page.
func TestAppStatus(t *testing.T) {
	ts := startServerOpts(t, Options{App: true})
	c, st, _ := ts.open(t)
	if st.App == nil || st.App.Busy || st.File || st.QR != "" {
		t.Fatalf("first status %+v, want an idle app", st)
	}
	ts.SetApp(App{Account: "nora", Online: true, Contacts: []Contact{{User: "eddie", Display: "Eddie", State: "online"}}})
	st = readStatus(t, c)
	if st.App == nil || st.App.Account != "nora" || len(st.App.Contacts) != 1 || st.App.Contacts[0].State != "online" {
		t.Fatalf("status after SetApp: %+v", st.App)
	}
	const link = "https://assist.example/#1234-apple-river"
	ts.SetStatus(Status{Code: "1234-apple-river", Link: link, QR: "data:forged"})
	st = readStatus(t, c)
	if !strings.HasPrefix(st.QR, "data:image/png;base64,") || st.Link != link {
		t.Fatalf("status after SetStatus: link %q, QR %.40q", st.Link, st.QR)
	}
	if st.App == nil || st.App.Account != "nora" {
		t.Fatalf("SetStatus lost the app's part: %+v", st.App)
	}

	get := func() (int, string, string) {
		t.Helper()
		resp, err := noKeepAlive.Get(ts.url + FileName)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Disposition"), string(b)
	}
	if code, _, _ := get(); code != http.StatusNotFound {
		t.Errorf("no invitation yet: %d, want 404", code)
	}
	ts.SetFile([]byte(`{"version":1}`))
	if st := readStatus(t, c); !st.File {
		t.Error("the status does not say a file can be saved")
	}
	if code, disp, body := get(); code != 200 || body != `{"version":1}` || !strings.Contains(disp, `attachment; filename="invitation.assist"`) {
		t.Errorf("the file: %d %q %q", code, disp, body)
	}
	ts.SetFile(nil)
	if code, _, _ := get(); code != http.StatusNotFound {
		t.Errorf("after SetFile(nil): %d, want 404", code)
	}

	send(t, c, `{"type":"ask","user":"eddie"}`)
	if a := ts.action(t); a.Kind != ActAsk || a.User != "eddie" {
		t.Errorf("action %+v", a)
	}
	send(t, c, `{"type":"get_help"}`)
	if a := ts.action(t); a.Kind != ActGetHelp {
		t.Errorf("action %+v", a)
	}
}

// TestInvitePageRefusesAppActions: assist invite's page has no Get help,
// no contacts and no file: their messages close the page as garbage, and
// the file is not served even when set.
func TestInvitePageRefusesAppActions(t *testing.T) {
	ts := startServer(t)
	ts.SetFile([]byte(`{"version":1}`))
	resp, err := noKeepAlive.Get(ts.url + FileName)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("assist invite's page serves the file: %v", resp.Status)
	}
	for _, msg := range []string{`{"type":"get_help"}`, `{"type":"ask","user":"eddie"}`, `{"type":"email","to":""}`} {
		c, st, _ := ts.open(t)
		if st.App != nil {
			t.Fatalf("assist invite's page has an app part: %+v", st.App)
		}
		send(t, c, msg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for {
			if _, _, err := c.Read(ctx); err != nil {
				if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
					t.Errorf("%s: closed with %v, want policy violation", msg, got)
				}
				break
			}
		}
		cancel()
	}
	select {
	case a := <-ts.Actions():
		t.Fatalf("an app action reached assist invite: %+v", a)
	default:
	}
}

// noKeepAlive leaves no idle connection (and goroutines) behind.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
