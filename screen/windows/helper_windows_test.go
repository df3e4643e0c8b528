package windows

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// TestWineHelper is the Windows half of the tests in wine_test.go, which
// check from Linux what only Linux can see: the X server's pixels, the X
// clipboard, and a key pressed on the X keyboard (the novice's own). It
// runs only when they start it, and takes commands on stdin, one a line,
// answering each on stdout:
//
//	grab FILE   show the test window, grab the screen into FILE (BGRX) -> "grabbed W H"
//	setclip T   put T (strconv-quoted) on the clipboard -> "clip-set"
//	waitclip    wait for clipboard text from elsewhere -> "clip-got T" (quoted)
//	hotkey      watch Esc; inject the expert's Esc -> "expert-esc N" (N: the window saw it),
//	            then "armed"; after the novice's Esc -> "taken-back N" (N: the window saw it)
//	quit        end
func TestWineHelper(t *testing.T) {
	if os.Getenv("ASSIST_WINE_HELPER") == "" {
		t.Skip("started by wine_test.go only")
	}
	d := openDesktop(t)
	w := openTestWindow(t, image.Rect(64, 48, 64+200, 48+120))
	in := bufio.NewScanner(os.Stdin)
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	for in.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		switch cmd {
		case "grab":
			img := grabUntil(t, d, func(img *screen.Image) bool { n, _ := showsPicture(img, w); return n == 0 })
			if err := os.WriteFile(arg, img.Pix, 0o600); err != nil {
				t.Fatal(err)
			}
			say("grabbed %d %d", img.Rect.Dx(), img.Rect.Dy())
		case "setclip":
			text, err := strconv.Unquote(arg)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.SetClipboard(text); err != nil {
				t.Fatal(err)
			}
			say("clip-set")
		case "waitclip":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			for {
				ch, err := d.Next(ctx)
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				if ch.Clipboard {
					say("clip-got %s", strconv.Quote(ch.Text))
					break
				}
			}
			cancel()
		case "hotkey":
			w.take()
			pressed := make(chan struct{}, 1)
			claims := 0 // the expert's presses not yet seen, as session.Gate counts them
			stop, err := d.WatchHotKey(0xff1b, func() bool {
				if claims > 0 {
					claims--
					return true
				}
				return false
			}, func() { pressed <- struct{}{} })
			if err != nil {
				t.Fatal(err)
			}
			claims++
			d.Key(0xff1b, true)
			d.Key(0xff1b, false)
			ev := w.waitEvents(func(ev []event) bool { return keyUps(ev, vkEscape) == 1 })
			say("expert-esc %d", keyDowns(ev, vkEscape))
			w.take()
			say("armed")
			select {
			case <-pressed:
			case <-time.After(10 * time.Second):
				t.Fatal("the novice's Esc did not arrive")
			}
			stop()
			// A marker after the novice's Esc: once the window has it,
			// the Esc would have arrived too.
			d.Key('x', true)
			d.Key('x', false)
			ev = w.waitEvents(func(ev []event) bool { return chars(ev) != "" })
			say("taken-back %d", keyDowns(ev, vkEscape)+keyUps(ev, vkEscape))
		case "quit":
			return
		default:
			t.Fatalf("unknown command %q", cmd)
		}
	}
}
