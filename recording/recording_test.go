package recording

import (
	"bytes"
	"context"
	"errors"
	"image"
	"net"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/assist-project/assist/rfb"
	"github.com/assist-project/assist/screen"
	"github.com/assist-project/assist/shadow"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// desk is an in-memory desktop the test draws on.
type desk struct {
	mu   sync.Mutex
	img  *screen.Image
	dmg  []image.Rectangle
	wake chan struct{}
}

func newDesk(w, h int) *desk {
	return &desk{img: screen.NewImage(image.Rect(0, 0, w, h)), wake: make(chan struct{}, 1)}
}

// fill paints r with a pattern that depends on seed, so that updates
// are not flat (ZRLE's packed and RLE tiles both get used).
func (d *desk) fill(r image.Rectangle, seed int) {
	d.mu.Lock()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			o := d.img.PixOffset(x, y)
			v := byte((x/3 + y/5 + seed) * 37)
			if (x/8+y/8)%3 == 0 {
				v = byte(seed * 50)
			}
			d.img.Pix[o], d.img.Pix[o+1], d.img.Pix[o+2] = v, byte(x*seed), byte(y+seed)
		}
	}
	d.dmg = append(d.dmg, r)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *desk) snapshot() *screen.Image {
	d.mu.Lock()
	defer d.mu.Unlock()
	img := screen.NewImage(d.img.Rect)
	img.CopyFrom(d.img, d.img.Rect)
	return img
}

func (d *desk) Size() image.Point { return d.img.Rect.Size() }
func (d *desk) Next(ctx context.Context) (screen.Change, error) {
	for {
		d.mu.Lock()
		dmg := d.dmg
		d.dmg = nil
		d.mu.Unlock()
		if len(dmg) > 0 {
			return screen.Change{Damage: dmg}, nil
		}
		select {
		case <-d.wake:
		case <-ctx.Done():
			return screen.Change{}, ctx.Err()
		}
	}
}
func (d *desk) Grab(dst *screen.Image, r image.Rectangle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dst.CopyFrom(d.img, r)
	return nil
}
func (d *desk) Cursor() (*screen.Cursor, error) {
	return &screen.Cursor{Pix: []uint32{0xff000000}, Size: image.Pt(1, 1)}, nil
}
func (d *desk) Close() error { return nil }

// viewer is a viewer of srv (the expert's) that keeps asking for updates;
// its picture is sent on pics after every update.
type viewer struct {
	c    *rfb.Client
	pics chan *screen.Image
}

func startViewer(t *testing.T, ctx context.Context, wg *sync.WaitGroup, srv *rfb.Server) *viewer {
	t.Helper()
	a, b := net.Pipe()
	wg.Go(func() { srv.ServeConn(ctx, a); a.Close() })
	wg.Go(func() { <-ctx.Done(); b.Close() })
	c, err := rfb.NewClient(b, rfb.ClientConfig{Shared: true, PixelFormat: &rfb.NativeFormat, Encodings: []int32{rfb.EncZRLE, rfb.EncCopyRect}})
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{c: c, pics: make(chan *screen.Image, 64)}
	wg.Go(func() {
		inc := false
		for {
			if c.RequestUpdate(inc, image.Rectangle{}) != nil {
				return
			}
			inc = true
			m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if m.Type == rfb.ServerFramebufferUpdate {
				fb := c.Framebuffer()
				img := screen.NewImage(fb.Rect)
				img.CopyFrom(fb, fb.Rect)
				select {
				case v.pics <- img:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	return v
}

// waitFor waits until the viewer shows want.
func (v *viewer) waitFor(t *testing.T, want *screen.Image) *screen.Image {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case img := <-v.pics:
			if bytes.Equal(img.Pix, want.Pix) {
				return img
			}
		case <-timeout:
			t.Fatal("the viewer never showed the desktop")
		}
	}
}

// TestRecordReplay: a recording of what the expert saw, played back and
// served as a VNC server, gives a viewer the same picture pixel for
// pixel; another key cannot open it, and nothing of it is readable
// without the key.
func TestRecordReplay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	d := newDesk(200, 150)
	d.fill(d.img.Rect, 1)
	sh := shadow.New(d, shadow.Options{TileSize: 64, DetectScroll: true})
	wg.Go(func() { sh.Run(ctx) })
	srv := &rfb.Server{Screen: sh, Name: "desk"}
	expert := startViewer(t, ctx, &wg, srv)
	expert.waitFor(t, d.snapshot())

	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	recorded := make(chan *screen.Image, 64)
	testUpdate = func(fb *screen.Image) {
		img := screen.NewImage(fb.Rect)
		img.CopyFrom(fb, fb.Rect)
		recorded <- img
	}
	defer func() { testUpdate = nil }()
	rec, err := Start(sh, &file, Header{Session: "s1"}, nil, key.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	var seen *screen.Image
	for i, r := range []image.Rectangle{image.Rect(10, 10, 90, 60), image.Rect(0, 100, 200, 150), image.Rect(150, 0, 200, 150)} {
		d.fill(r, i+2)
		seen = expert.waitFor(t, d.snapshot())
	}
	// The recorder's viewer has seen it too.
	(&viewer{pics: recorded}).waitFor(t, seen)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file.Bytes(), []byte(Magic)) {
		t.Fatal("the recording is readable without the key")
	}

	// Another key cannot open it.
	other, _ := age.GenerateX25519Identity()
	if _, err := Open(bytes.NewReader(file.Bytes()), other); !errors.Is(err, ErrIdentity) {
		t.Fatalf("opened with another key: %v", err)
	}

	p, err := Open(bytes.NewReader(file.Bytes()), key)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header().Session != "s1" {
		t.Fatalf("header %+v", p.Header())
	}
	p.Skip(time.Hour) // no need to wait for the recorded pace
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	psh := shadow.New(p.Capturer(), shadow.Options{TileSize: 64})
	wg.Go(func() { psh.Run(ctx) })
	replay := startViewer(t, ctx, &wg, &rfb.Server{Screen: psh, Name: "replay"})
	replay.waitFor(t, seen)
}

// TestReplayPace: playback keeps the recorded timing, pauses, and skips.
func TestReplayPace(t *testing.T) {
	c := newClock()
	done := make(chan struct{})
	c.pause(true)
	at := c.pos()
	woke := make(chan bool, 1)
	go func() { woke <- c.wait(at+50*time.Millisecond, done) }()
	select {
	case <-woke:
		t.Fatal("a paused clock moved on")
	case <-time.After(100 * time.Millisecond):
	}
	c.skip(time.Second)
	if !<-woke {
		t.Fatal("skip did not wake the wait")
	}
	if p := c.pos(); p < at+time.Second {
		t.Fatalf("position %v after a skip of 1s", p)
	}
	go func() { woke <- c.wait(time.Hour, done) }()
	close(done)
	if <-woke {
		t.Fatal("a closed feed kept waiting")
	}
}
