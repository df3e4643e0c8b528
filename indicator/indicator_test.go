package indicator

import (
	"image"
	"image/color"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/lab"
	"github.com/assist-project/assist/screen"
	"github.com/jezek/xgb/xproto"
)

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Bob", "Bob"},
		{"  Bob   the\tBuilder \n", "Bob the Builder"},
		{"", "Your helper"},
		{"\x00\x1b[2J", "[2J"},
		{"\u202eboB", "boB"}, // a bidi override would turn the sentence around
		{"\xff\xfeBob", "Bob"},
		{strings.Repeat("a", 40), strings.Repeat("a", 24) + "…"},
		{"\u200b\u2066", "Your helper"},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzName(f *testing.F) {
	f.Add("Bob")
	f.Add("\u202e\x00 x")
	f.Add(strings.Repeat("é", 30))
	f.Fuzz(func(t *testing.T, s string) {
		n := Name(s)
		if n == "" || len([]rune(n)) > maxNameRunes+1 {
			t.Fatalf("Name(%q) = %q", s, n)
		}
		for _, r := range n {
			if r < 0x20 || r == 0x7f || r == '\u202e' || r == '\n' {
				t.Fatalf("Name(%q) = %q keeps %U", s, n, r)
			}
		}
		if _, err := drawBar(State{Mode: Controlling, Expert: s}, 1, 400); err != nil {
			t.Fatal(err)
		}
	})
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		s    State
		want string
	}{
		{State{Mode: Viewing, Expert: "Bob"}, "Bob is seeing your screen"},
		{State{Mode: Controlling, Expert: "Bob"}, "Bob is controlling your mouse and keyboard"},
		{State{Mode: StillSharing, Expert: "Bob"}, "Still sharing with Bob?"},
		{State{Mode: Off, Expert: "Bob"}, ""},
		{State{Mode: Offer, Expert: "Dana", Org: "ACME\u202eIT"}, "Dana from ACMEIT offers to help you. Accept?"},
	} {
		if got := Text(tc.s); got != tc.want {
			t.Errorf("Text(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestBarFits: a long name gives way, the buttons stay whole on a
// VGA-wide screen.
func TestBarFits(t *testing.T) {
	b, err := drawBar(State{Mode: Controlling, Expert: strings.Repeat("W", 24)}, 1, 640-2*frameWidth)
	if err != nil {
		t.Fatal(err)
	}
	if w := b.img.Rect.Dx(); w > 640-2*frameWidth {
		t.Errorf("bar is %d pixels wide, want at most %d", w, 640-2*frameWidth)
	}
	if len(b.buttons) != 2 || b.buttons[0].click != TakeBack || b.buttons[1].click != End {
		t.Fatalf("buttons %+v, want Take back control and End", b.buttons)
	}
	for _, bt := range b.buttons {
		if !bt.r.In(b.img.Rect) {
			t.Errorf("button %v at %v outside the bar %v", bt.click, bt.r, b.img.Rect)
		}
	}
}

// desktop is an Xvfb with the novice's work (an xterm, focused) and the
// indicator open on it.
type desktop struct {
	x     *lab.X
	xterm *lab.Window
	ind   *x11
}

func newDesktop(t *testing.T) *desktop {
	t.Helper()
	x := lab.StartXvfb(t, 800, 600)
	xt := x.StartXterm(t, "novice-work", "60x20+100+150", "sleep 600")
	xt.Focus(t)
	ind, err := Open(x.Display, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ind.Close() })
	return &desktop{x: x, xterm: xt, ind: ind.(*x11)}
}

func pixel(img *screen.Image, x, y int) color.RGBA {
	i := img.PixOffset(x, y)
	return color.RGBA{img.Pix[i+2], img.Pix[i+1], img.Pix[i], 0xff}
}

// focused is the id of the window with the keyboard focus.
func (d *desktop) focused(t *testing.T) string {
	return strings.TrimSpace(d.x.Xdotool(t, "getwindowfocus"))
}

// waitFrame waits until the screen's corner and edges show col.
func (d *desktop) waitFrame(t *testing.T, col color.RGBA) *screen.Image {
	t.Helper()
	var shot *screen.Image
	deadline := time.Now().Add(10 * time.Second)
	for {
		shot = d.x.Screenshot(t)
		pts := []image.Point{{0, 0}, {799, 599}, {2, 300}, {797, 300}, {400, 597}}
		ok := true
		for _, p := range pts {
			if pixel(shot, p.X, p.Y) != col {
				ok = false
			}
		}
		if ok {
			return shot
		}
		if time.Now().After(deadline) {
			lab.SaveArtifacts(t, map[string]*screen.Image{"frame": shot})
			t.Fatalf("frame: pixel (0,0) is %v, want %v", pixel(shot, 0, 0), col)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// barButton is the screen position of the middle of button c, as
// Button says, checked against the bar's window on the screen.
func (d *desktop) barButton(t *testing.T, s State, c Click) image.Point {
	t.Helper()
	w := d.x.FindWindow(t, "^Assist: ")
	r, ok := Button(s, d.x.Size, c)
	if !ok || !r.In(w.Rect) {
		t.Fatalf("button %v at %v (%v), not on the bar at %v", c, r, ok, w.Rect)
	}
	return r.Min.Add(r.Size().Div(2))
}

func TestIndicatorX11(t *testing.T) {
	d := newDesktop(t)
	work := d.xterm.ID
	if f := d.focused(t); f != work {
		t.Fatalf("focus is on %s before the indicator, want the xterm %s", f, work)
	}

	// Viewing: orange frame, the bar says who sees.
	if err := d.ind.Show(State{Mode: Viewing, Expert: "Bob"}); err != nil {
		t.Fatal(err)
	}
	shot := d.waitFrame(t, viewColour)
	bar := d.x.FindWindow(t, "^Assist: Bob is seeing your screen$")
	if bar.Rect.Min.Y != frameWidth || bar.Rect.Dy() != barHeight {
		t.Errorf("bar at %v, want under the frame's top edge", bar.Rect)
	}
	lab.SaveArtifacts(t, map[string]*screen.Image{"viewing": shot})

	// Clicks pass through the middle: the window under the centre of
	// the xterm is the xterm, not the frame.
	// (Not the xterm's exact centre: Focus put the pointer there, and
	// xdotool's --sync waits for a move.)
	c := d.xterm.Rect.Min.Add(d.xterm.Rect.Size().Div(3))
	d.x.Xdotool(t, "mousemove", "--sync", strconv.Itoa(c.X), strconv.Itoa(c.Y))
	if under := windowUnderPointer(t, d.x); d.ind.ours(xwin(t, under)) {
		t.Errorf("the window under the pointer in the middle of the screen is the indicator's (%s)", under)
	}

	// Controlling: red frame, new words, Take back control.
	start := time.Now()
	if err := d.ind.Show(State{Mode: Controlling, Expert: "Bob"}); err != nil {
		t.Fatal(err)
	}
	// A measurement, not an assertion: drawing the bar and the X round trip.
	t.Logf("Show(Controlling) took %v", time.Since(start))
	shot = d.waitFrame(t, controlColour)
	d.x.FindWindow(t, "^Assist: Bob is controlling your mouse and keyboard$")
	lab.SaveArtifacts(t, map[string]*screen.Image{"controlling": shot})

	// Another window mapped later comes under the indicator.
	d.x.StartXterm(t, "late-window", "80x10+0+0", "sleep 600")
	d.waitFrame(t, controlColour)
	if top := topWindow(t, d.ind); !d.ind.ours(top) {
		t.Errorf("the top window after another was mapped is %#x, not the indicator's", top)
	}
	d.xterm.Focus(t)

	// A click on Take back control reports it, and the focus stays on
	// the novice's work.
	p := d.barButton(t, State{Mode: Controlling, Expert: "Bob"}, TakeBack)
	d.x.Click(t, p.X, p.Y)
	select {
	case got := <-d.ind.Clicks():
		if got != TakeBack {
			t.Fatalf("click reported as %v, want take back control", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no click reported 10 s after clicking Take back control")
	}
	if f := d.focused(t); f != work {
		t.Errorf("focus moved to %s after the click on the bar, want the xterm %s", f, work)
	}

	// End.
	p = d.barButton(t, State{Mode: Controlling, Expert: "Bob"}, End)
	d.x.Click(t, p.X, p.Y)
	select {
	case got := <-d.ind.Clicks():
		if got != End {
			t.Fatalf("click reported as %v, want end", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no click reported 10 s after clicking End")
	}

	// Off: nothing left on the screen.
	if err := d.ind.Show(State{Mode: Off}); err != nil {
		t.Fatal(err)
	}
	shot = d.x.Screenshot(t)
	if px := pixel(shot, 0, 599); px == controlColour || px == viewColour {
		t.Errorf("frame still shown after Off: pixel %v", px)
	}
	cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Assist")
	cmd.Env = append(os.Environ(), d.x.Env()...)
	if out, _ := cmd.Output(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("indicator windows still visible after Off: %s", out)
	}
	d.ind.Close()
	if _, ok := <-d.ind.Clicks(); ok {
		t.Error("Clicks not closed by Close")
	}
}

// TestIndicatorOffer: an offer is asked on the bar alone (no frame:
// nobody sees the screen yet), with Accept and Decline, whose clicks are
// reported.
func TestIndicatorOffer(t *testing.T) {
	d := newDesktop(t)
	s := State{Mode: Offer, Expert: "Dana", Org: "ACME IT"}
	if err := d.ind.Show(s); err != nil {
		t.Fatal(err)
	}
	d.x.FindWindow(t, "^Assist: Dana from ACME IT offers to help you\\. Accept\\?$")
	shot := d.x.Screenshot(t)
	if px := pixel(shot, 0, 599); px == viewColour || px == controlColour || px == offerColour {
		t.Errorf("a frame is shown for an offer: pixel %v", px)
	}
	for _, c := range []Click{Decline, Accept} {
		p := d.barButton(t, s, c)
		d.x.Click(t, p.X, p.Y)
		select {
		case got := <-d.ind.Clicks():
			if got != c {
				t.Fatalf("click reported as %v, want %v", got, c)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no click reported 10 s after clicking %v", c)
		}
	}
}

// TestIndicatorSlideOff: a press on a button and a release elsewhere is
// no click, as with any button.
func TestIndicatorSlideOff(t *testing.T) {
	d := newDesktop(t)
	if err := d.ind.Show(State{Mode: Viewing, Expert: "Bob"}); err != nil {
		t.Fatal(err)
	}
	d.waitFrame(t, viewColour)
	p := d.barButton(t, State{Mode: Viewing, Expert: "Bob"}, End)
	d.x.Xdotool(t, "mousemove", "--sync", strconv.Itoa(p.X), strconv.Itoa(p.Y), "mousedown", "1",
		"mousemove", "--sync", "400", "400", "mouseup", "1")
	// Then a real click, which must be the first reported.
	if err := d.ind.Show(State{Mode: Controlling, Expert: "Bob"}); err != nil {
		t.Fatal(err)
	}
	p = d.barButton(t, State{Mode: Controlling, Expert: "Bob"}, TakeBack)
	d.x.Click(t, p.X, p.Y)
	select {
	case got := <-d.ind.Clicks():
		if got != TakeBack {
			t.Fatalf("first click reported is %v, want take back control (the slide off End counted)", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no click reported")
	}
}

// windowUnderPointer is xdotool's id of the window under the pointer.
func windowUnderPointer(t *testing.T, x *lab.X) string {
	t.Helper()
	for _, f := range strings.Fields(x.Xdotool(t, "getmouselocation", "--shell")) {
		if v, ok := strings.CutPrefix(f, "WINDOW="); ok {
			return v
		}
	}
	t.Fatal("xdotool getmouselocation gave no window")
	return ""
}

func xwin(t *testing.T, id string) xproto.Window {
	t.Helper()
	n, err := strconv.ParseUint(id, 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	return xproto.Window(n)
}

// topWindow is the root's topmost mapped child.
func topWindow(t *testing.T, x *x11) xproto.Window {
	t.Helper()
	tree, err := xproto.QueryTree(x.c, x.root).Reply()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(tree.Children) - 1; i >= 0; i-- {
		a, err := xproto.GetWindowAttributes(x.c, tree.Children[i]).Reply()
		if err == nil && a.MapState == xproto.MapStateViewable {
			return tree.Children[i]
		}
	}
	t.Fatal("no mapped window")
	return 0
}
