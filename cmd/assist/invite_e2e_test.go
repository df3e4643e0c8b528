package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/coder/websocket"
)

// The end-to-end tests of `assist invite` and `assist join`: the real
// binary on both sides, talking over loopback (here) or through NAT
// routers in network namespaces (invite_netns_test.go). The novice's
// stdin is not a terminal, so it takes one command per line (y, n, esc,
// end, say TEXT), which is how these tests answer its questions.

// lineTimeout bounds the wait for a line of output: generous, since CI
// machines are slow and a missing line is a failure, not a slow one.
const lineTimeout = 30 * time.Second

const (
	noviceName = "Nova"
	expertName = "Max"
	// password is the novice's password (given with --password-file, so
	// it is the test's). Not 8 letters and digits, so NormalizePassword
	// leaves it as it is.
	password = "correct-horse-battery"
)

// novice is a running `assist invite`.
type novice struct {
	*lab.LineProc
	File         string   // the invitation file
	PasswordFile string   // holds the right password
	Addrs        []string // from the "addresses:" line
}

// startInvite runs `assist invite` sharing display, with the invitation
// and the password in files of the test, and waits until it waits for the
// expert. prefix runs it through another program (ip netns exec NS); args
// are more flags, such as --listen and --allow.
func startInvite(t *testing.T, prefix []string, display string, args ...string) *novice {
	t.Helper()
	dir := t.TempDir()
	n := &novice{File: filepath.Join(dir, "help.assist"), PasswordFile: writePassword(t, password)}
	argv := append(slices.Clone(prefix), lab.AssistBinary(t), "invite", "--file", n.File,
		"--password-file", n.PasswordFile, "--display", display, "--name", noviceName)
	argv = append(argv, args...)
	n.LineProc = lab.StartLines(t, nil, argv[0], argv[1:]...)
	n.WaitLine(t, `^code: \S+$`, lineTimeout)
	// A password from --password-file is not printed, only where it is.
	n.WaitLine(t, `^password: \(from `+regexp.QuoteMeta(n.PasswordFile)+`\)$`, lineTimeout)
	n.WaitLine(t, `^invitation: `+regexp.QuoteMeta(n.File)+`$`, lineTimeout)
	n.WaitLine(t, `^expires: \S+$`, lineTimeout)
	n.Addrs = strings.Fields(n.WaitLine(t, `^addresses: (.+)$`, lineTimeout)[1])
	n.WaitLine(t, `^waiting for your helper`, lineTimeout)
	return n
}

// writePassword writes a password file and returns its path.
func writePassword(t *testing.T, pw string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "password")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(pw + "\n"); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// startJoin runs `assist join` on an invitation file. The flags come
// before the file: Go's flag package stops at the first argument that is
// not a flag (see TestInviteJoin/flags-after-the-invitation).
func startJoin(t *testing.T, prefix []string, file, passwordFile string, args ...string) *lab.LineProc {
	t.Helper()
	argv := append(slices.Clone(prefix), lab.AssistBinary(t), "join",
		"--password-file", passwordFile, "--no-browser", "--name", expertName)
	argv = append(append(argv, args...), file)
	return lab.StartLines(t, nil, argv[0], argv[1:]...)
}

// expert is a connected `assist join`.
type expert struct {
	*lab.LineProc
	Path string // "direct HOST:PORT"
	RFB  string // the loopback address for VNC viewers
	Web  string // the browser viewer's URL
}

// connected waits for the lines `assist join` prints once authenticated.
func connected(t *testing.T, p *lab.LineProc) *expert {
	t.Helper()
	e := &expert{LineProc: p}
	e.Path = p.WaitLine(t, `^connected to `+noviceName+` via (direct \S+)$`, lineTimeout)[1]
	e.RFB = p.WaitLine(t, `^rfb on (\S+)$`, lineTimeout)[1]
	e.Web = p.WaitLine(t, `^browser viewer: (http://\S+)$`, lineTimeout)[1]
	return e
}

// joinFails runs `assist join`, which must fail: it returns the error
// line, after checking the exit status (1) and that the error is the last
// line of stderr, in the form "assist join: ...".
func joinFails(t *testing.T, prefix []string, file, passwordFile string) string {
	t.Helper()
	p := startJoin(t, prefix, file, passwordFile)
	if code := p.WaitExit(t, 60*time.Second); code != 1 {
		t.Fatalf("assist join exited with %d, want 1\noutput:\n%s", code, p.Output())
	}
	if out := p.Stdout(); out != "" {
		t.Errorf("failed assist join printed on stdout: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(p.Stderr()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "assist join: ") {
		t.Fatalf("assist join's last line of stderr is %q, want \"assist join: ...\"\nstderr:\n%s", last, p.Stderr())
	}
	return last
}

// stillWaiting checks that the novice is running and saw no expert since
// it started (or since the last line a WaitLine matched).
func (n *novice) stillWaiting(t *testing.T) {
	t.Helper()
	if exited, err := n.Exited(); exited {
		t.Fatalf("assist invite exited (%v)\noutput:\n%s", err, n.Output())
	}
	for _, l := range n.Lines() {
		if strings.Contains(l, " connected from ") {
			t.Fatalf("assist invite saw an expert: %q\noutput:\n%s", l, n.Output())
		}
	}
}

// wantContains fails t unless msg contains every one of parts
// (case-insensitive).
func wantContains(t *testing.T, what, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(p)) {
			t.Errorf("%s: %q does not mention %q", what, msg, p)
		}
	}
}

// noSecrets checks that no log line of the programs shows the password.
func noSecrets(t *testing.T, procs ...*lab.LineProc) {
	t.Helper()
	for _, p := range procs {
		if strings.Contains(p.Stderr(), password) {
			t.Errorf("the password appears in a log line:\n%s", p.Stderr())
		}
	}
}

// stop ends a process with SIGTERM and checks that it exits with status 0.
func stop(t *testing.T, p *lab.LineProc, what string) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", what, err)
	}
	if code := p.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0\noutput:\n%s", what, code, p.Output())
	}
}

// page is the browser viewer's events connection, used the way the page
// uses it: to chat and to ask for control.
type page struct{ c *websocket.Conn }

func openPage(t *testing.T, webURL string) *page {
	t.Helper()
	u, err := url.Parse(webURL)
	if err != nil {
		t.Fatalf("browser viewer address %q: %v", webURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	ws := "ws://" + u.Host + u.Path + "events"
	c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://" + u.Host}},
	})
	if err != nil {
		t.Fatalf("browser viewer events %s: %v", ws, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	// The page must read its events, or the server closes it as stuck.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return &page{c}
}

func (p *page) send(t *testing.T, msg map[string]string) {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("browser viewer: send %s: %v", b, err)
	}
}

// newConsentDesktop is an Xvfb showing the test pattern with an xterm over
// it whose input goes to a file, and the pointer resting, invisible, on
// the pattern.
func newConsentDesktop(t *testing.T) *inputDesktop {
	t.Helper()
	x := lab.StartXvfb(t, desktopSize.X, desktopSize.Y)
	d := &inputDesktop{X: x, file: filepath.Join(t.TempDir(), "typed")}
	x.ShowImage(t, lab.TestPattern(desktopSize.X, desktopSize.Y))
	d.term = x.StartXterm(t, "e2e-invite-input", "40x8+320+300", "exec cat > "+d.file)
	x.HideCursor(t)
	x.Xdotool(t, "mousemove", "--sync", "5", "5")
	return d
}

// TestInviteJoin runs `assist invite` and `assist join` over loopback, on
// one shared desktop: consent, control, chat, and every way joining can
// fail. The subtests run in parallel; only "consent and control" sends
// input to the desktop.
func TestInviteJoin(t *testing.T) {
	e2e(t)
	t.Parallel()
	d := newConsentDesktop(t)
	lab.AssistBinary(t) // build once, before the parallel subtests

	t.Run("consent and control", func(t *testing.T) {
		t.Parallel()
		testConsentAndControl(t, d)
	})
	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		testRefusals(t, d)
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		testWrongPassword(t, d)
	})
	t.Run("busy", func(t *testing.T) {
		t.Parallel()
		testBusy(t, d)
	})
	t.Run("damaged invitation", func(t *testing.T) {
		t.Parallel()
		testDamagedInvitation(t, d)
	})
	t.Run("expired invitation", func(t *testing.T) {
		t.Parallel()
		testExpiredInvitation(t, d)
	})
	t.Run("invitation expires while waiting", func(t *testing.T) {
		t.Parallel()
		testInvitationExpires(t, d)
	})
	t.Run("flags after the invitation", func(t *testing.T) {
		t.Parallel()
		nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
		// The documented order: assist join INVITATION [flags].
		p := lab.StartLines(t, nil, lab.AssistBinary(t), "join", nov.File,
			"--password-file", nov.PasswordFile, "--no-browser", "--name", expertName)
		connected(t, p).WaitLine(t, `^state: viewing`, lineTimeout)
	})
	t.Run("time to first frame", func(t *testing.T) {
		t.Parallel()
		testTimeToFirstFrame(t, d)
	})
}

// testConsentAndControl: the expert sees nothing until the novice allows
// viewing, controls nothing until the novice allows control, and stops
// controlling when the novice presses Esc; chat goes both ways.
func testConsentAndControl(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "ask")
	if len(nov.Addrs) != 1 || !strings.HasPrefix(nov.Addrs[0], "127.0.0.1:") {
		t.Errorf("addresses %q, want the one loopback address it listens on", nov.Addrs)
	}
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile, "--request-control"))
	nov.WaitLine(t, `^`+expertName+` connected from 127\.0\.0\.1:\d+$`, lineTimeout)
	nov.WaitLines(t, lineTimeout, `^state: asking`,
		`^`+expertName+` wants to see your screen\. Allow\? \[y/N\]$`)
	exp.WaitLine(t, `^state: asking`, lineTimeout)

	// Until the novice answers, a viewer on the expert's side gets not
	// even the RFB greeting.
	early, err := net.Dial("tcp", exp.RFB)
	if err != nil {
		t.Fatalf("dial rfb on %s: %v", exp.RFB, err)
	}
	defer early.Close()
	early.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := early.Read(make([]byte, 12)); n > 0 || !os.IsTimeout(err) {
		t.Fatalf("before the novice allowed viewing, a viewer read %d bytes (%v), want nothing", n, err)
	}

	nov.Send(t, "y")
	// --request-control asks as soon as viewing starts; the novice's
	// question and its state line come from different goroutines.
	nov.WaitLines(t, lineTimeout, `^state: viewing`,
		`^`+expertName+` asks to control your mouse and keyboard\. Allow\? \[y/N\]$`)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	exp.WaitLine(t, `^state: control-asked`, lineTimeout)
	early.SetReadDeadline(time.Now().Add(lineTimeout))
	greeting := make([]byte, 12)
	if _, err := early.Read(greeting); err != nil || !strings.HasPrefix(string(greeting), "RFB 003.") {
		t.Fatalf("after the novice allowed viewing, the viewer read %q (%v), want an RFB greeting", greeting, err)
	}
	early.Close()

	// A real viewer shows the desktop, exactly (lossless encodings).
	vx := lab.StartXvfb(t, viewerSize.X, viewerSize.Y)
	v := lab.StartTigerVNC(t, vx, exp.RFB, desktopSize,
		"-AutoSelect=0", "-NoJPEG=1", "-FullColor=1", "-PreferredEncoding=ZRLE")
	lab.WaitMatch(t, d.X, v.Screen, 0, matchTimeout)

	inTerm := image.Pt(340, 320) // inside the xterm, through the viewer
	rest := image.Pt(500, 380)   // inside the xterm too, where the novice's pointer rests
	t.Run("no input while control is asked", func(t *testing.T) {
		inputDropped(t, d, v, exp.RFB, inTerm, rest, "asked but not allowed\n", "marker-asked\n")
	})

	nov.Send(t, "y")
	nov.WaitLine(t, `^state: controlling`, lineTimeout)
	exp.WaitLine(t, `^state: controlling`, lineTimeout)
	t.Run("input while controlling", func(t *testing.T) {
		typeThroughViewer(t, v, inTerm, "hello from the expert\n")
		d.waitTyped(t, "hello from the expert\n")
		if got := d.Pointer(t); got != inTerm {
			t.Errorf("the desktop's pointer is at %v after the expert's click, want %v", got, inTerm)
		}
	})

	nov.Send(t, "esc")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	t.Run("no input after Esc", func(t *testing.T) {
		inputDropped(t, d, v, exp.RFB, inTerm, rest, "after the novice took control back\n", "marker-esc\n")
	})
	// The viewer still shows the desktop, with what was typed.
	lab.WaitMatch(t, d.X, v.Screen, 0, matchTimeout)

	t.Run("chat", func(t *testing.T) {
		nov.Send(t, "say hi from the novice")
		exp.WaitLine(t, `^`+noviceName+`: hi from the novice$`, lineTimeout)
		openPage(t, exp.Web).send(t, map[string]string{"type": "chat", "text": "hello from the expert's page"})
		nov.WaitLine(t, `^`+expertName+`: hello from the expert's page$`, lineTimeout)
	})

	nov.Send(t, "end")
	exp.WaitLine(t, `^state: ended`, lineTimeout)
	if code := exp.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist join exited with %d after the novice ended the session, want 0\n%s", code, exp.Output())
	}
	if code := nov.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist invite exited with %d after end, want 0\n%s", code, nov.Output())
	}
	noSecrets(t, nov.LineProc, exp.LineProc)
}

// inputDropped types through the viewer while the expert may not control
// the desktop, and checks that nothing arrived: the novice's pointer rests
// in the xterm (which so has the focus), and after the expert's input a
// marker typed on the desktop itself must be the only new text.
func inputDropped(t *testing.T, d *inputDesktop, v *lab.Viewer, rfbAddr string, at, rest image.Point, text, marker string) {
	t.Helper()
	d.Xdotool(t, "mousemove", "--sync", fmt.Sprint(rest.X), fmt.Sprint(rest.Y))
	before := len(d.typed())
	typeThroughViewer(t, v, at, text)
	// One more viewer sends a pointer and a key event, then a full
	// update request: once it is answered, the novice's server has dealt
	// with the events before it.
	c := lab.DialRFB(t, rfbAddr)
	m := []byte{5, 0, 0, 10, 0, 10, 4, 1, 0, 0, 0, 0, 0, 'x', 4, 0, 0, 0, 0, 0, 0, 'x'}
	if _, err := c.Conn.Write(m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Screen(); err != nil {
		t.Fatalf("the novice's desktop stopped answering: %v", err)
	}
	if got := d.Pointer(t); got != rest {
		t.Errorf("the expert moved the desktop's pointer to %v (it rested at %v)", got, rest)
		d.Xdotool(t, "mousemove", "--sync", fmt.Sprint(rest.X), fmt.Sprint(rest.Y))
	}
	d.Type(t, marker)
	d.waitTyped(t, marker)
	if got := d.typed()[before:]; got != marker {
		t.Errorf("the expert's input got through: the xterm got %q, want only the marker %q", got, marker)
	}
}

// testRefusals: the novice refuses control (the expert goes on viewing),
// and refuses viewing (the session ends; the novice waits for another).
func testRefusals(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap")
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "y")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)

	// The expert asks from the browser viewer; the novice says no.
	openPage(t, exp.Web).send(t, map[string]string{"type": "request_control"})
	nov.WaitLines(t, lineTimeout, `^state: control-asked`, `asks to control your mouse and keyboard\. Allow\? \[y/N\]$`)
	exp.WaitLine(t, `^state: control-asked`, lineTimeout)
	nov.Send(t, "n")
	nov.WaitLine(t, `^state: viewing`, lineTimeout)
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	if _, _, err := lab.DialRFB(t, exp.RFB).Screen(); err != nil {
		t.Fatalf("after refusing control the expert no longer sees the desktop: %v", err)
	}
	stop(t, exp.LineProc, "assist join")
	// Not "state: ended" first: the novice's terminal may skip that line
	// (runNoviceUI returns on Done before it drains the last event).
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	// A second expert; the novice does not let them see.
	exp2 := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	nov.WaitLine(t, `wants to see your screen\. Allow\? \[y/N\]$`, lineTimeout)
	nov.Send(t, "n")
	exp2.WaitLine(t, `^state: ended \(.*declined.*\)$`, lineTimeout)
	if code := exp2.WaitExit(t, lineTimeout); code != 0 {
		t.Errorf("assist join exited with %d after the novice declined, want 0", code)
	}
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	noSecrets(t, nov.LineProc, exp.LineProc, exp2.LineProc)
}

// testWrongPassword: a wrong password is refused with a message that says
// so, the novice keeps waiting, the right password still works, and five
// wrong passwords void the invitation for good.
func testWrongPassword(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	wrong := writePassword(t, "wrong-horse-battery")

	msg := joinFails(t, nil, nov.File, wrong)
	wantContains(t, "wrong password", msg, "wrong password", "4 attempts left")
	nov.stillWaiting(t)

	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
	nov.WaitLine(t, `^`+expertName+` connected from`, lineTimeout)
	stop(t, exp.LineProc, "assist join")
	nov.WaitLine(t, `^waiting for your helper`, lineTimeout)

	// Four more wrong passwords make five: the invitation is void.
	for left := 3; left >= 0; left-- {
		msg := joinFails(t, nil, nov.File, wrong)
		if left == 0 {
			wantContains(t, "fifth wrong password", msg, "wrong password", "void", "new invitation")
			break
		}
		wantContains(t, "wrong password", msg, "wrong password", fmt.Sprintf("%d attempts left", left))
		if exited, _ := nov.Exited(); exited {
			t.Fatalf("assist invite exited after a wrong password\n%s", nov.Output())
		}
	}
	// Both sides are told: the expert above, the novice now, and assist
	// invite ends (it notices the void invitation within a quarter of a
	// second, so an expert who tries in that moment hears "void" too, and
	// one who tries later finds nobody waiting).
	if code := nov.WaitExit(t, lineTimeout); code != 1 {
		t.Errorf("assist invite exited with %d on a void invitation, want 1", code)
	}
	wantContains(t, "the novice, on a void invitation", nov.Output(), "void", "new one")
	if got := strings.Count(nov.Stdout(), " connected from "); got != 1 {
		t.Errorf("the novice saw %d experts, want 1\n%s", got, nov.Stdout())
	}
	noSecrets(t, nov.LineProc, exp.LineProc)
	if strings.Contains(nov.Stderr(), "wrong-horse-battery") {
		t.Errorf("a wrong password appears in the novice's log:\n%s", nov.Stderr())
	}
}

// testBusy: a second expert is turned away while one is connected, and
// the first one does not notice.
func testBusy(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	first := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	first.WaitLine(t, `^state: viewing`, lineTimeout)
	c := lab.DialRFB(t, first.RFB)
	if _, _, err := c.Screen(); err != nil {
		t.Fatalf("first expert: %v", err)
	}

	msg := joinFails(t, nil, nov.File, nov.PasswordFile)
	wantContains(t, "second expert", msg, "another expert is connected")

	if _, _, err := c.Screen(); err != nil {
		t.Fatalf("first expert after the second was turned away: %v", err)
	}
	if exited, _ := first.Exited(); exited {
		t.Fatalf("the first expert's assist join exited\n%s", first.Output())
	}
	for _, l := range append(first.Lines(), nov.Lines()...) {
		if strings.HasPrefix(l, "state: ended") {
			t.Errorf("the first session changed state: %q", l)
		}
	}
	if got := strings.Count(nov.Stdout(), " connected from "); got != 1 {
		t.Errorf("the novice saw %d experts, want 1\n%s", got, nov.Stdout())
	}
}

// testDamagedInvitation: damaged, truncated or foreign files are refused
// before anything is sent, with a message that says what to do.
func testDamagedInvitation(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	valid, err := os.ReadFile(nov.File)
	if err != nil {
		t.Fatal(err)
	}
	idRe := regexp.MustCompile(`"id": "([a-z2-7]+)"`)
	m := idRe.FindSubmatch(valid)
	if m == nil {
		t.Fatalf("no id in the invitation:\n%s", valid)
	}
	badID := strings.Replace(string(valid), string(m[1]), string(m[1][:5])+"!"+string(m[1][6:]), 1)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte // nil: no file at all
		want []string
	}{
		{"truncated in half", valid[:len(valid)/2], []string{"damaged", "new invitation"}},
		{"last brace missing", valid[:len(valid)-2], []string{"damaged", "new invitation"}},
		{"id altered", []byte(badID), []string{"damaged", "new invitation"}},
		{"binary garbage", []byte("\x00\xff\xfe garbage \x89PNG\r\n\x1a\n"), []string{"damaged"}},
		{"empty", []byte{}, []string{"damaged"}},
		{"not an invitation", []byte(`{"hello": "world"}`), []string{"not an Assist invitation"}},
		{"missing", nil, []string{"does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".assist")
			if tc.data != nil {
				if err := os.WriteFile(path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			wantContains(t, tc.name, joinFails(t, nil, path, nov.PasswordFile), tc.want...)
		})
	}
	nov.stillWaiting(t)
	// The novice was not disturbed: the intact invitation still works.
	exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
	exp.WaitLine(t, `^state: viewing`, lineTimeout)
}

// testExpiredInvitation: an invitation whose time is up (but that is
// otherwise intact) is refused by the expert's side without connecting.
func testExpiredInvitation(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	data, err := os.ReadFile(nov.File)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("invitation file: %v\n%s", err, data)
	}
	now := time.Now().UTC()
	doc["created"] = now.Add(-2 * time.Hour).Format(time.RFC3339)
	doc["expires"] = now.Add(-time.Hour).Format(time.RFC3339)
	past, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "expired.assist")
	if err := os.WriteFile(path, past, 0o600); err != nil {
		t.Fatal(err)
	}
	msg := joinFails(t, nil, path, nov.PasswordFile)
	wantContains(t, "expired invitation", msg, "expired", "new invitation")
	nov.stillWaiting(t)
}

// testInvitationExpires: a novice whose invitation runs out with no expert
// stops with a message, and the expert's side then refuses the file.
// invitation.MinTTL makes this the longest subtest (a minute of waiting).
func testInvitationExpires(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--expires", "1m")
	if code := nov.WaitExit(t, 2*time.Minute); code != 1 {
		t.Errorf("assist invite exited with %d when its invitation expired, want 1\n%s", code, nov.Output())
	}
	wantContains(t, "assist invite at expiry", nov.Stderr(), "expired", "assist invite again")
	msg := joinFails(t, nil, nov.File, nov.PasswordFile)
	wantContains(t, "expired invitation", msg, "expired", "new invitation")
}

// testTimeToFirstFrame measures, over loopback, the time from starting
// `assist join` to the first complete frame a viewer on its RFB port
// receives (Raw, the whole desktop), with viewing allowed in advance so
// that no person's reaction is counted. It is logged, not asserted.
func testTimeToFirstFrame(t *testing.T, d *inputDesktop) {
	nov := startInvite(t, nil, d.Display, "--listen", "127.0.0.1:0", "--no-portmap", "--allow", "view")
	var samples []time.Duration
	for range 3 {
		start := time.Now()
		exp := connected(t, startJoin(t, nil, nov.File, nov.PasswordFile))
		c := lab.DialRFB(t, exp.RFB)
		if _, _, err := c.Screen(); err != nil {
			t.Fatalf("first frame: %v", err)
		}
		samples = append(samples, time.Since(start))
		c.Conn.Close()
		stop(t, exp.LineProc, "assist join")
		nov.WaitLine(t, `^waiting for your helper`, lineTimeout)
	}
	logFirstFrame(t, "loopback", samples)
}

// logFirstFrame logs the median of samples in the format the README
// quotes: "time-to-first-frame: WHERE 123ms".
func logFirstFrame(t *testing.T, where string, samples []time.Duration) {
	t.Helper()
	s := slices.Clone(samples)
	slices.Sort(s)
	all := make([]string, len(samples))
	for i, d := range samples {
		all[i] = d.Round(time.Millisecond).String()
	}
	t.Logf("time-to-first-frame: %s %dms", where, s[len(s)/2].Milliseconds())
	if len(samples) > 1 {
		t.Logf("time-to-first-frame samples (%s): %s", where, strings.Join(all, " "))
	}
}
