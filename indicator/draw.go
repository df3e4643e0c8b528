package indicator

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// The indicator's colours: the frame is orange while the expert only
// sees, red while they control, so a glance at the screen's edge says
// which. The bar is dark with white text, readable on any desktop.
var (
	viewColour    = color.RGBA{0xf0, 0x8c, 0x00, 0xff}
	controlColour = color.RGBA{0xe0, 0x31, 0x31, 0xff}
	barColour     = color.RGBA{0x20, 0x21, 0x24, 0xff}
	textColour    = color.RGBA{0xff, 0xff, 0xff, 0xff}
	buttonColour  = color.RGBA{0xff, 0xff, 0xff, 0xff}
	buttonText    = color.RGBA{0x20, 0x21, 0x24, 0xff}
	endColour     = color.RGBA{0xc9, 0x2a, 0x2a, 0xff}
	// offerColour is the dot of an Offer's bar, which has no frame.
	offerColour = color.RGBA{0x1a, 0x73, 0xe8, 0xff}
)

// FrameColour is the colour of the frame for s: what a capture of the
// screen's edge shows while the indicator is on.
func FrameColour(s State) color.RGBA { return frameColour(s) }

// frameColour is the colour of the frame for s.
func frameColour(s State) color.RGBA {
	if s.Mode == Offer {
		return offerColour
	}
	if s.Mode == Controlling || s.Mode == StillSharing && s.Controlled {
		return controlColour
	}
	return viewColour
}

// Sizes in pixels at scale 1 (a 1080-line screen or smaller).
const (
	frameWidth  = 6
	barHeight   = 44
	barPad      = 14
	buttonPad   = 12
	buttonGap   = 8
	buttonH     = 30
	fontPixels  = 16
	dotDiameter = 12
)

type faces struct {
	regular, bold font.Face
}

var (
	facesMu sync.Mutex
	facesBy = map[int]*faces{}
)

// facesAt returns the Go fonts at scale (1, 2, …), parsed once.
func facesAt(scale int) (*faces, error) {
	facesMu.Lock()
	defer facesMu.Unlock()
	if f := facesBy[scale]; f != nil {
		return f, nil
	}
	reg, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("indicator: parse Go Regular: %w", err)
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return nil, fmt.Errorf("indicator: parse Go Bold: %w", err)
	}
	opts := &opentype.FaceOptions{Size: float64(fontPixels * scale), DPI: 72, Hinting: font.HintingFull}
	f := &faces{}
	if f.regular, err = opentype.NewFace(reg, opts); err != nil {
		return nil, fmt.Errorf("indicator: Go Regular face: %w", err)
	}
	if f.bold, err = opentype.NewFace(bold, opts); err != nil {
		return nil, fmt.Errorf("indicator: Go Bold face: %w", err)
	}
	facesBy[scale] = f
	return f, nil
}

// scale is 2 on screens over 2000 lines tall (4K), else 1.
func scale(screen image.Point) int {
	if screen.Y > 2000 {
		return 2
	}
	return 1
}

// layout draws the bar for s on a screen of this size and says where it
// goes: at the top, in the middle, just under the frame.
func layout(s State, screen image.Point) (*bar, image.Rectangle, error) {
	sc := scale(screen)
	fw := frameWidth * sc
	b, err := drawBar(s, sc, screen.X-2*fw)
	if err != nil {
		return nil, image.Rectangle{}, err
	}
	size := b.img.Rect.Size()
	at := image.Rectangle{Min: image.Pt((screen.X-size.X)/2, fw)}
	at.Max = at.Min.Add(size)
	return b, at, nil
}

// Button returns where button c of the bar for s is on a screen (or
// primary monitor at the origin) of this size, in screen coordinates, and
// whether the bar has it: for scripts and tests that click it, and for
// documentation.
func Button(s State, screen image.Point, c Click) (image.Rectangle, bool) {
	b, at, err := layout(s, screen)
	if err != nil {
		return image.Rectangle{}, false
	}
	for _, bt := range b.buttons {
		if bt.click == c {
			return bt.r.Add(at.Min), true
		}
	}
	return image.Rectangle{}, false
}

// bar is the bar drawn for one State: its pixels and where its buttons are.
type bar struct {
	img     *image.RGBA
	buttons []button
}

type button struct {
	click Click
	r     image.Rectangle
}

// hit returns the button at p, if any.
func (b *bar) hit(p image.Point) (Click, bool) {
	for _, bt := range b.buttons {
		if p.In(bt.r) {
			return bt.click, true
		}
	}
	return 0, false
}

// drawBar draws the bar for s, at most maxW pixels wide (the name is the
// part that gives way: Name already bounds it, and the text is cut
// further if the screen is narrow).
func drawBar(s State, scale, maxW int) (*bar, error) {
	f, err := facesAt(scale)
	if err != nil {
		return nil, err
	}
	px := func(n int) int { return n * scale }
	clicks := buttons(s)
	labels := make([]int, len(clicks))
	buttonsW := 0
	for i, c := range clicks {
		labels[i] = font.MeasureString(f.bold, label(c)).Ceil()
		buttonsW += labels[i] + 2*px(buttonPad) + px(buttonGap)
	}
	name := Name(s.Expert)
	text := Text(s)
	// The name in bold, the rest in regular: the name stands out as the
	// part the expert chose.
	pre, post := splitName(text, name)
	textW := func() int {
		return font.MeasureString(f.regular, pre).Ceil() + font.MeasureString(f.bold, name).Ceil() + font.MeasureString(f.regular, post).Ceil()
	}
	fixedW := px(barPad) + px(dotDiameter) + px(10) + px(barPad) + buttonsW
	for fixedW+textW() > maxW && len([]rune(name)) > 2 {
		r := []rune(name)
		if r[len(r)-1] == '…' {
			r = r[:len(r)-1]
		}
		name = string(r[:len(r)-1]) + "…"
	}
	w := fixedW + textW()
	h := px(barHeight)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{barColour}, image.Point{}, draw.Src)
	// A dot of the frame's colour ties the bar to the frame.
	x := px(barPad)
	fillCircle(img, image.Pt(x+px(dotDiameter)/2, h/2), px(dotDiameter)/2, frameColour(s))
	x += px(dotDiameter) + px(10)
	base := h/2 + (f.regular.Metrics().Ascent-f.regular.Metrics().Descent).Ceil()/2
	d := &font.Drawer{Dst: img, Src: &image.Uniform{textColour}, Face: f.regular, Dot: fixed.P(x, base)}
	d.DrawString(pre)
	d.Face = f.bold
	d.DrawString(name)
	d.Face = f.regular
	d.DrawString(post)
	x = d.Dot.X.Ceil() + px(barPad)
	b := &bar{img: img}
	for i, c := range clicks {
		bw := labels[i] + 2*px(buttonPad)
		r := image.Rect(x, (h-px(buttonH))/2, x+bw, (h+px(buttonH))/2)
		bg, fg := buttonColour, buttonText
		if c == End || c == Decline {
			bg, fg = endColour, textColour
		}
		roundRect(img, r, px(5), bg)
		d := &font.Drawer{Dst: img, Src: &image.Uniform{fg}, Face: f.bold, Dot: fixed.P(r.Min.X+px(buttonPad), base)}
		d.DrawString(label(c))
		b.buttons = append(b.buttons, button{click: c, r: r})
		x += bw + px(buttonGap)
	}
	return b, nil
}

// splitName splits text around the first occurrence of name.
func splitName(text, name string) (pre, post string) {
	for i := 0; i+len(name) <= len(text); i++ {
		if text[i:i+len(name)] == name {
			return text[:i], text[i+len(name):]
		}
	}
	return text, ""
}

func fillCircle(img *image.RGBA, c image.Point, r int, col color.RGBA) {
	for y := -r; y <= r; y++ {
		for x := -r; x <= r; x++ {
			if x*x+y*y <= r*r {
				img.SetRGBA(c.X+x, c.Y+y, col)
			}
		}
	}
}

// roundRect fills r with corners of radius rad.
func roundRect(img *image.RGBA, r image.Rectangle, rad int, col color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dx, dy := 0, 0
			if x < r.Min.X+rad {
				dx = r.Min.X + rad - x
			} else if x >= r.Max.X-rad {
				dx = x - (r.Max.X - rad - 1)
			}
			if y < r.Min.Y+rad {
				dy = r.Min.Y + rad - y
			} else if y >= r.Max.Y-rad {
				dy = y - (r.Max.Y - rad - 1)
			}
			if dx*dx+dy*dy > rad*rad {
				continue
			}
			img.SetRGBA(x, y, col)
		}
	}
}
