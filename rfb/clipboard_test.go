package rfb

import (
	"image"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assist-project/assist/screen"
)

// unicodeText is clipboard text Latin-1 cannot carry.
const unicodeText = "Grüße ✓ 你好\nline two"

// viewerKinds are the viewers the clipboard gate must hold for.
var viewerKinds = []struct {
	name string
	cfg  ClientConfig
}{
	{"plain", ClientConfig{Encodings: []int32{EncRaw}}},
	{"extended", ClientConfig{Encodings: []int32{EncRaw, EncExtendedClipboard}}},
	{"extended notify only", ClientConfig{Encodings: []int32{EncRaw, EncExtendedClipboard}, ClipboardNotifyOnly: true}},
}

// clipViewer is a Client with a goroutine reading its messages, so a test
// can wait for frames and see every clipboard message in order.
type clipViewer struct {
	c    *Client
	mu   sync.Mutex
	msgs []Message
	wake chan struct{}
	done chan struct{}
}

func dialClipViewer(t *testing.T, ts *testServer, cfg ClientConfig) *clipViewer {
	t.Helper()
	v := &clipViewer{c: ts.dial(t, cfg), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for {
			m, err := v.c.ReadMessage()
			if err != nil {
				return
			}
			m.Rects = nil
			v.mu.Lock()
			v.msgs = append(v.msgs, m)
			v.mu.Unlock()
			select {
			case v.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		v.c.Close()
		<-v.done
	})
	if slices.Contains(cfg.Encodings, EncExtendedClipboard) {
		// The server's caps, then a frame answering a request sent after
		// the client's caps: the server has read them by then.
		v.waitFor(t, "server caps", func(m Message) bool { return m.ClipboardFlags&ClipboardCaps != 0 })
	}
	v.frame(t, nil)
	return v
}

// waitFor waits for a message satisfying ok and returns it.
func (v *clipViewer) waitFor(t *testing.T, what string, ok func(Message) bool) Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	return v.waitFrom(t, what, &seen, deadline, ok)
}

func (v *clipViewer) waitFrom(t *testing.T, what string, seen *int, deadline <-chan time.Time, ok func(Message) bool) Message {
	t.Helper()
	for {
		v.mu.Lock()
		msgs := v.msgs
		v.mu.Unlock()
		for ; *seen < len(msgs); *seen++ {
			if ok(msgs[*seen]) {
				*seen++
				return msgs[*seen-1]
			}
		}
		select {
		case <-v.wake:
		case <-v.done:
			t.Fatalf("connection ended waiting for %s", what)
		case <-deadline:
			t.Fatalf("no %s after 10 s", what)
		}
	}
}

// frame makes the desktop change (if desk is set), requests an update and
// waits for the viewer's framebuffer to show the change: everything the
// server sent before that update has been read by then.
func (v *clipViewer) frame(t *testing.T, desk *memDesktop) {
	t.Helper()
	var want [3]byte
	if desk != nil {
		desk.Change(func(img *screen.Image) image.Rectangle {
			i := img.PixOffset(0, 0)
			img.Pix[i] ^= 0xff
			copy(want[:], img.Pix[i:i+3])
			return image.Rect(0, 0, 1, 1)
		})
	}
	n := v.count(func(m Message) bool { return m.Type == ServerFramebufferUpdate })
	if err := v.c.RequestUpdate(desk != nil, image.Rect(0, 0, 32, 32)); err != nil {
		t.Fatal(err)
	}
	v.waitFor(t, "frame", func(m Message) bool {
		if m.Type != ServerFramebufferUpdate {
			return false
		}
		n--
		return n < 0
	})
	if desk != nil {
		// Pixels are the reader goroutine's; it is blocked on the next
		// read by now, and the message list lock orders us after it.
		v.mu.Lock()
		fb := v.c.Framebuffer()
		got := fb.Pix[fb.PixOffset(0, 0):][:3]
		v.mu.Unlock()
		if [3]byte(got) != want {
			// A frame for an earlier change: ask for the next one.
			v.frame(t, nil)
		}
	}
}

func (v *clipViewer) count(ok func(Message) bool) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, m := range v.msgs {
		if ok(m) {
			n++
		}
	}
	return n
}

// clipMessages returns the cut text messages that carried or announced
// desktop text: plain text, notify with text, provide.
func (v *clipViewer) clipMessages() []Message {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []Message
	for _, m := range v.msgs {
		if m.Type != ServerCutText {
			continue
		}
		f := m.ClipboardFlags
		if f&ClipboardCaps != 0 {
			continue
		}
		if f == 0 || f&(ClipboardProvide|ClipboardNotify) != 0 && f&ClipboardText != 0 {
			out = append(out, m)
		}
	}
	return out
}

func setDesktopClip(desk *memDesktop, text string) {
	desk.Copy(text)
}

// TestClipboardGate is the outgoing gate's table: with ClipboardOut
// refusing, no viewer gets the desktop's text nor hears of it; with it
// allowing, a plain viewer gets Latin-1 text and an Extended Clipboard
// viewer gets the exact UTF-8 text, provided at once or notified and
// provided on request.
func TestClipboardGate(t *testing.T) {
	for _, allowed := range []bool{false, true} {
		for _, vk := range viewerKinds {
			name := vk.name + "/refused"
			if allowed {
				name = vk.name + "/allowed"
			}
			t.Run(name, func(t *testing.T) {
				ts := startServerClip(t, 32, 32, false, func(time.Time) bool { return allowed })
				v := dialClipViewer(t, ts, vk.cfg)
				setDesktopClip(ts.desk, unicodeText)
				if !allowed {
					v.frame(t, ts.desk)
					if got := v.clipMessages(); len(got) != 0 {
						t.Fatalf("refused clipboard reached the viewer: %+v", got)
					}
					return
				}
				want := unicodeText
				if vk.name == "plain" {
					want = "Gr\u00fc\u00dfe ? ??\nline two"
				}
				m := v.waitFor(t, "clipboard text", func(m Message) bool {
					return m.Type == ServerCutText && m.ClipboardFlags&ClipboardCaps == 0 && (m.ClipboardFlags == 0 || m.ClipboardFlags&ClipboardProvide != 0)
				})
				if m.Text != want {
					t.Fatalf("viewer got %q, want %q", m.Text, want)
				}
				notified := v.count(func(m Message) bool { return m.ClipboardFlags&(ClipboardNotify|ClipboardCaps) == ClipboardNotify }) > 0
				if want := vk.cfg.ClipboardNotifyOnly; notified != want {
					t.Errorf("notified first: %v, want %v", notified, want)
				}
			})
		}
	}
}

// TestClipboardNoBacklog: text that appeared while the gate refused is
// never sent, not once the right is granted, not on a request.
func TestClipboardNoBacklog(t *testing.T) {
	for _, vk := range viewerKinds {
		t.Run(vk.name, func(t *testing.T) {
			var since atomic.Int64 // unix nanos of the grant; 0: refused
			out := func(changed time.Time) bool {
				s := since.Load()
				return s != 0 && !changed.Before(time.Unix(0, s))
			}
			ts := startServerClip(t, 32, 32, false, out)
			v := dialClipViewer(t, ts, vk.cfg)
			setDesktopClip(ts.desk, "secret copied before sharing")
			v.frame(t, ts.desk)
			since.Store(time.Now().UnixNano())
			if vk.cfg.ClipboardNotifyOnly || slices.Contains(vk.cfg.Encodings, EncExtendedClipboard) {
				// Ask for it outright, as a viewer may.
				if err := v.c.write(appendClipAction(nil, msgClientCutText, clipRequest, clipText)); err != nil {
					t.Fatal(err)
				}
				if err := v.c.write(appendClipAction(nil, msgClientCutText, clipPeek, 0)); err != nil {
					t.Fatal(err)
				}
			}
			v.frame(t, ts.desk)
			if got := v.clipMessages(); len(got) != 0 {
				t.Fatalf("text from before the grant reached the viewer: %+v", got)
			}
			setDesktopClip(ts.desk, "shared after the grant")
			m := v.waitFor(t, "clipboard text", func(m Message) bool {
				return m.Type == ServerCutText && m.ClipboardFlags&ClipboardCaps == 0 && (m.ClipboardFlags == 0 || m.ClipboardFlags&ClipboardProvide != 0)
			})
			if m.Text != "shared after the grant" {
				t.Fatalf("viewer got %q", m.Text)
			}
		})
	}
}

// TestClipboardFromViewer: an Extended Clipboard viewer's UTF-8 text
// reaches the desktop exactly; a plain viewer's arrives as Latin-1.
func TestClipboardFromViewer(t *testing.T) {
	for _, vk := range viewerKinds {
		t.Run(vk.name, func(t *testing.T) {
			ts := startServer(t, 32, 32, false)
			v := dialClipViewer(t, ts, vk.cfg)
			if err := v.c.CutText(unicodeText); err != nil {
				t.Fatal(err)
			}
			v.frame(t, ts.desk) // the server read the cut text before this request
			want := unicodeText
			if vk.name == "plain" {
				want = "Gr\u00fc\u00dfe ? ??\nline two"
			}
			ts.desk.mu.Lock()
			got := slices.Clone(ts.desk.clipSet)
			ts.desk.mu.Unlock()
			if len(got) != 1 || got[0] != want {
				t.Fatalf("desktop clipboard got %q, want [%q]", got, want)
			}
		})
	}
}

// TestClipboardExtendedUnannounced: an Extended Clipboard message from a
// viewer that never named the pseudo-encoding is a protocol violation.
func TestClipboardExtendedUnannounced(t *testing.T) {
	ts := startServer(t, 32, 32, false)
	v := dialClipViewer(t, ts, ClientConfig{Encodings: []int32{EncRaw}})
	msg, err := appendClipProvide(nil, msgClientCutText, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.c.write(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		t.Fatal("server kept the connection")
	}
	if len(ts.desk.clipSet) != 0 {
		t.Fatal("text of an unannounced extended message reached the desktop")
	}
}
