package workload

import (
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/assist-project/assist/bench/marker"
	"github.com/assist-project/assist/screen"
)

// A Workload is one kind of desktop activity: a scene drawn once, then a
// sequence of numbered changes at a steady rate. After each change the
// runner stamps the change's number into the marker at Marker(), so a
// viewer's framebuffer tells which change it shows.
type Workload interface {
	Name() string
	// Rate is the number of changes per second.
	Rate() float64
	// Marker is where the marker goes; Step never draws over it.
	Marker() image.Point
	// Setup draws the initial scene over the whole screen.
	Setup(d *Desktop) error
	// Step draws change n (n >= 1).
	Step(d *Desktop, n uint64) error
}

// Colours of the synthetic desktop.
const (
	colBackground = 0xf4f4f2
	colTitle      = 0x2b4f7e
	colText       = 0x202020
	colDesktop    = 0x3a6ea5
)

// titleHeight is the height of the title bar of the typing and scrolling
// windows; the marker sits in it, out of the way of the text.
const titleHeight = 32

// Small changes nothing but the marker in an otherwise still window, 10
// times a second: a blinking cursor, a clock ticking. With nothing else
// to send, its latency is the floor a path gives one small change.
type Small struct {
	size image.Point
}

// NewSmall returns the small-change workload.
func NewSmall(size image.Point) *Small { return &Small{size: size} }

func (w *Small) Name() string        { return "small" }
func (w *Small) Rate() float64       { return 10 }
func (w *Small) Marker() image.Point { return markerInTitle(w.size) }

func (w *Small) Setup(d *Desktop) error {
	drawWindow(d)
	return nil
}

// Step draws nothing: the runner stamps the marker.
func (w *Small) Step(*Desktop, uint64) error { return nil }

// All returns the standard workloads (small change, typing, scrolling,
// video, full screen) for a screen of size size, in the order the
// benchmark runs them. Building them pre-renders the video
// and full-screen frames, which takes a second or two.
func All(size image.Point) []Workload {
	return []Workload{NewSmall(size), NewTyping(size), NewScrolling(size), NewVideo(size), NewFullscreen(size)}
}

// markerInTitle places the marker near the right end of the title bar,
// on the 8-pixel grid.
func markerInTitle(size image.Point) image.Point {
	return image.Pt((size.X-marker.Size.X-16)&^7, 8)
}

func drawWindow(d *Desktop) {
	s := d.Size()
	d.Fill(image.Rect(0, 0, s.X, s.Y), colBackground)
	d.Fill(image.Rect(0, 0, s.X, titleHeight), colTitle)
	d.Text(12, (titleHeight-d.LineHeight)/2, "Assist benchmark", 0xffffff, colTitle)
}

// Typing draws one character at a time at a moving cursor, like a person
// typing into an editor: tiny changes at a low rate, where latency is all
// that matters.
type Typing struct {
	size image.Point
	cols int
}

// NewTyping returns the typing workload (20 characters per second).
func NewTyping(size image.Point) *Typing { return &Typing{size: size, cols: 80} }

func (w *Typing) Name() string        { return "typing" }
func (w *Typing) Rate() float64       { return 20 }
func (w *Typing) Marker() image.Point { return markerInTitle(w.size) }

func (w *Typing) textArea() image.Rectangle {
	return image.Rect(16, titleHeight+16, w.size.X-16, w.size.Y-16)
}

func (w *Typing) Setup(d *Desktop) error {
	drawWindow(d)
	return nil
}

func (w *Typing) Step(d *Desktop, n uint64) error {
	area := w.textArea()
	rows := uint64(max(1, area.Dy()/d.LineHeight))
	i := n - 1
	col, line := int(i%uint64(w.cols)), i/uint64(w.cols)%rows
	if col == 0 && line == 0 && i > 0 {
		d.Fill(area, colBackground) // page full: start a new one
	}
	ch := typingText[i%uint64(len(typingText))]
	d.Text(area.Min.X+col*d.CharWidth, area.Min.Y+int(line)*d.LineHeight, string(ch), colText, colBackground)
	return nil
}

// Scrolling scrolls a window full of text up by one line and writes a
// new line at the bottom, like a terminal printing a log.
type Scrolling struct {
	size image.Point
}

// NewScrolling returns the scrolling workload (30 lines per second).
func NewScrolling(size image.Point) *Scrolling { return &Scrolling{size: size} }

func (w *Scrolling) Name() string        { return "scrolling" }
func (w *Scrolling) Rate() float64       { return 30 }
func (w *Scrolling) Marker() image.Point { return markerInTitle(w.size) }

// textArea is a whole number of lines below the title bar.
func (w *Scrolling) textArea(d *Desktop) image.Rectangle {
	rows := (w.size.Y - titleHeight) / d.LineHeight
	return image.Rect(0, titleHeight, w.size.X, titleHeight+rows*d.LineHeight)
}

func (w *Scrolling) Setup(d *Desktop) error {
	drawWindow(d)
	area := w.textArea(d)
	rows := area.Dy() / d.LineHeight
	for r := 0; r < rows; r++ {
		d.Text(4, area.Min.Y+r*d.LineHeight, logLine(uint64(1_000_000+r), d.size.X/d.CharWidth), colText, colBackground)
	}
	return nil
}

func (w *Scrolling) Step(d *Desktop, n uint64) error {
	area := w.textArea(d)
	lh := d.LineHeight
	d.Copy(image.Rect(area.Min.X, area.Min.Y+lh, area.Max.X, area.Max.Y), area.Min)
	last := image.Rect(area.Min.X, area.Max.Y-lh, area.Max.X, area.Max.Y)
	d.Fill(last, colBackground)
	d.Text(4, last.Min.Y, logLine(n, d.size.X/d.CharWidth), colText, colBackground)
	return nil
}

// Video plays pre-rendered natural-looking frames in a 640×480 area in
// the middle of the screen, 60 frames per second.
type Video struct {
	size   image.Point
	area   image.Rectangle
	frames []*screen.Image
}

// NewVideo returns the video workload, rendering its frames (two seconds
// of video, looped).
func NewVideo(size image.Point) *Video {
	w, h := min(640, size.X), min(480, size.Y)
	area := image.Rect(0, 0, w, h).Add(image.Pt((size.X-w)/2&^7, (size.Y-h)/2&^7))
	v := &Video{size: size, area: area, frames: make([]*screen.Image, 120)}
	for i := range v.frames {
		f := Scene(w, h, float64(i)/60, 7)
		f.Rect = area // same pixels, placed on the screen
		v.frames[i] = f
	}
	return v
}

// Frame returns the picture change n draws (placed at its area; the
// marker is drawn over it afterwards).
func (w *Video) Frame(n uint64) *screen.Image { return w.frames[n%uint64(len(w.frames))] }

func (w *Video) Name() string        { return "video" }
func (w *Video) Rate() float64       { return 60 }
func (w *Video) Marker() image.Point { return w.area.Min.Add(image.Pt(16, 16)) }

func (w *Video) Setup(d *Desktop) error {
	s := d.Size()
	d.Fill(image.Rect(0, 0, s.X, s.Y), colDesktop)
	d.PutImage(w.frames[0])
	return nil
}

func (w *Video) Step(d *Desktop, n uint64) error {
	d.PutImage(w.frames[n%uint64(len(w.frames))])
	return nil
}

// Fullscreen replaces the whole screen 10 times per second, cycling
// through a few different pictures (a slide show, a game, switching
// between full-screen applications).
type Fullscreen struct {
	size   image.Point
	frames []*screen.Image
}

// NewFullscreen returns the full-screen workload, rendering its pictures.
func NewFullscreen(size image.Point) *Fullscreen {
	f := &Fullscreen{size: size, frames: make([]*screen.Image, 4)}
	for i := range f.frames {
		f.frames[i] = Scene(size.X, size.Y, float64(i)*3.1, uint64(100+i))
	}
	return f
}

func (w *Fullscreen) Name() string        { return "fullscreen" }
func (w *Fullscreen) Rate() float64       { return 10 }
func (w *Fullscreen) Marker() image.Point { return image.Pt(16, 16) }

func (w *Fullscreen) Setup(d *Desktop) error {
	d.PutImage(w.frames[0])
	return nil
}

func (w *Fullscreen) Step(d *Desktop, n uint64) error {
	d.PutImage(w.frames[n%uint64(len(w.frames))])
	return nil
}

// Run draws changes first, first+1, ... of w at w.Rate() until dur has
// passed or ctx is done, stamping each change's marker and waiting for the
// X server to execute it. drawn is called after each change with its
// number and the time the X server had executed it (t0). The schedule is
// fixed (change k is due at start + k/rate); when drawing falls behind by
// more than one period, the schedule restarts from now instead of
// bursting to catch up. Run returns the number after the last change
// drawn.
func Run(ctx context.Context, d *Desktop, w Workload, first uint64, dur time.Duration, drawn func(n uint64, t0 time.Time)) (uint64, error) {
	return RunProbed(ctx, d, w, first, dur, drawn, nil)
}

// ProbeAt is where a Probe's marker goes on a screen of size size: in the
// middle of the top edge, where no workload draws except the full-screen
// one (which the probe's marker is stamped over again, see RunProbed).
func ProbeAt(size image.Point) image.Point {
	return image.Pt((size.X/2)&^7, 8)
}

// A Probe is a small change of its own made while a workload runs: a
// second marker, stamped with the next number at Rate times a second
// between the workload's changes. How soon a viewer shows it is the
// latency of a small change (a typed key, a blinking cursor) while the
// screen is otherwise busy.
type Probe struct {
	At   image.Point
	Rate float64
	// Drawn is called after each probe change with its number (from 1)
	// and the time the X server had executed it.
	Drawn func(n uint64, t0 time.Time)

	n   uint64    // the last number stamped
	due time.Time // when the next is due
}

// RunProbed is Run with an optional probe (nil for none). The probe's
// marker is stamped again, unchanged, after each of the workload's
// changes, so a workload that draws over it does not erase it.
func RunProbed(ctx context.Context, d *Desktop, w Workload, first uint64, dur time.Duration, drawn func(n uint64, t0 time.Time), p *Probe) (uint64, error) {
	period := time.Duration(float64(time.Second) / w.Rate())
	start := time.Now()
	end := start.Add(dur)
	due := start
	var pperiod time.Duration
	if p != nil {
		pperiod = time.Duration(float64(time.Second) / p.Rate)
		// Half a workload period off its changes, so the probe does
		// not always ride in the same update as one.
		p.due = start.Add(pperiod + period/2)
	}
	n := first
	for {
		now := time.Now()
		if p != nil && !now.Before(p.due) && p.due.Before(end) {
			p.n++
			d.Marker(p.At, p.n)
			if err := d.Sync(); err != nil {
				return n, fmt.Errorf("workload: %s: probe %d: %w", w.Name(), p.n, err)
			}
			p.Drawn(p.n, time.Now())
			if p.due = p.due.Add(pperiod); time.Since(p.due) > pperiod {
				p.due = time.Now().Add(pperiod)
			}
			continue
		}
		if now.Before(due) {
			wake := due
			if p != nil && p.due.Before(wake) {
				wake = p.due
			}
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(wake.Sub(now)):
			}
			continue
		} else if now.Sub(due) > period {
			due = now
		}
		if !due.Before(end) {
			return n, nil
		}
		if err := w.Step(d, n); err != nil {
			return n, fmt.Errorf("workload: %s: change %d: %w", w.Name(), n, err)
		}
		if p != nil {
			d.Marker(p.At, p.n)
		}
		d.Marker(w.Marker(), n)
		if err := d.Sync(); err != nil {
			return n, fmt.Errorf("workload: %s: change %d: %w", w.Name(), n, err)
		}
		drawn(n, time.Now())
		n++
		due = due.Add(period)
	}
}

// typingText is what the typing workload types, over and over.
const typingText = "Dear support, my printer stopped working after the update. " +
	"When I click Print nothing happens, and the little icon in the corner shows a red cross. " +
	"I tried turning it off and on again, twice. Could you please have a look? Thank you! "

var logWords = strings.Fields("GET POST /api/v1/items /static/app.js 200 304 404 ms user=alice user=bob " +
	"session=7f3a cache=hit cache=miss bytes=5120 bytes=88 upstream=10.0.0.3 retry=0 retry=1 " +
	"level=info level=warn level=debug msg=\"request done\" msg=\"slow query\" db=postgres")

// logLine returns log line number n, at most width characters long.
func logLine(n uint64, width int) string {
	rng := rand.New(rand.NewPCG(n, 42))
	var b strings.Builder
	fmt.Fprintf(&b, "2024-05-%02d 10:%02d:%02d.%03d [%5d] ", 1+n%28, n/60%60, n%60, n*37%1000, n)
	words := 4 + rng.IntN(20)
	for i := 0; i < words; i++ {
		b.WriteString(logWords[rng.IntN(len(logWords))])
		b.WriteByte(' ')
	}
	s := b.String()
	return s[:min(len(s), width, 255)]
}
