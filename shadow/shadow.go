// Package shadow keeps an in-memory copy of a desktop up to date from a
// screen.Capturer and tells each subscriber (one per viewer) what changed
// since it last looked.
//
// Capturers report damage generously (whole windows, often the whole
// screen), so Screen grabs the damaged areas, compares them tile by tile
// with its copy and reports only the pixels that really changed. It also
// recognises vertical scrolls, which it reports as copies (an RFB
// CopyRect) plus the newly revealed lines, instead of a repaint of the
// whole scrolled area.
//
// Each viewer has a Subscriber, which accumulates what its viewer lacks:
// a bitmap of dirty cells (which cannot grow, however slow the viewer) and
// a few pending copies. A viewer that applies a Pending's Copies and then
// paints its Dirty areas from the copy shows the copy exactly (see
// Pending). Subscriber.Take does the collecting and the reading in one
// step, while the capture loop waits.
package shadow

import (
	"image"
	"log/slog"
	"slices"
	"sync"

	"github.com/assist-project/assist/screen"
)

// Options tune a Screen. The zero Options selects the defaults: 64-pixel
// tiles and scroll detection on.
type Options struct {
	// TileSize is the side of the square tiles compared with the copy
	// (default 64). Reported areas are rounded out to cells of
	// min(TileSize, 8) pixels.
	TileSize int
	// DetectScroll turns scroll detection on.
	DetectScroll bool
	// Logger receives what goes wrong without stopping Run; nil means
	// slog.Default().
	Logger *slog.Logger
}

// maxCell is the largest side of the cells in which subscribers track
// dirty areas: finer than tiles, so a typed character costs a small
// rectangle rather than a whole tile.
const maxCell = 8

// Screen is the in-memory copy of a desktop. Its methods are safe for
// concurrent use; Run must be called once for it to follow the desktop.
type Screen struct {
	c    screen.Capturer
	tile int
	cell int
	scr  bool // detect scrolls
	log  *slog.Logger

	mu     sync.RWMutex
	cur    *screen.Image // the copy
	cursor *screen.Cursor
	subs   []*Subscriber

	// State of the capture loop, used by Run only.
	scratch *screen.Image // grabbed pixels, compared with cur
	fresh   *screen.Image // this step's grabbed pixels: scratch or lent
	release func()        // gives fresh back, when lent
	grid    tileGrid
	sc      scroller
	ev      event
	grabs   []image.Rectangle
	areas   []image.Rectangle
}

// New returns a Screen that follows c. Its copy is black until Run has
// grabbed the screen.
func New(c screen.Capturer, opts Options) *Screen {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Options{} (give or take a logger) means the defaults.
	if bare := (Options{TileSize: opts.TileSize, DetectScroll: opts.DetectScroll}); bare == (Options{}) {
		opts.TileSize, opts.DetectScroll = 64, true
	}
	if opts.TileSize <= 0 {
		opts.TileSize = 64
	}
	size := c.Size()
	return &Screen{
		c:    c,
		tile: opts.TileSize,
		cell: min(opts.TileSize, maxCell),
		scr:  opts.DetectScroll,
		log:  log,
		cur:  screen.NewImage(image.Rectangle{Max: size}),
	}
}

// Size is the size of the copy.
func (s *Screen) Size() image.Point {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur.Rect.Size()
}

// Read copies the pixels of r from the copy into dst, at the same
// coordinates. Parts of r outside the copy or dst are left alone.
func (s *Screen) Read(dst *screen.Image, r image.Rectangle) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	dst.CopyFrom(s.cur, r)
}

// Cursor returns the pointer's current shape, or nil before Run fetched
// it. The shape must not be modified.
func (s *Screen) Cursor() *screen.Cursor {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cursor
}

// Subscribe returns a new subscriber, which starts with the whole screen
// dirty and the cursor changed.
func (s *Screen) Subscribe() *Subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.cur.Rect.Size()
	sub := &Subscriber{s: s, ready: make(chan struct{}, 1), size: size, cursor: true}
	sub.dirty.reset(size, s.cell)
	sub.dirty.markAll()
	sub.unsettled.reset(size, s.cell)
	sub.signal()
	s.subs = append(s.subs, sub)
	return sub
}

func (s *Screen) unsubscribe(sub *Subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = slices.DeleteFunc(s.subs, func(x *Subscriber) bool { return x == sub })
}
