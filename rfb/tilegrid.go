package rfb

import "image"

// tileGrid divides a screen into square tiles numbered row by row: what
// the H.264 tracker and the scaling motion record count changes in.
type tileGrid struct {
	tile, cols, rows int
}

func newTileGrid(size image.Point, tile int) tileGrid {
	return tileGrid{tile: tile, cols: (size.X + tile - 1) / tile, rows: (size.Y + tile - 1) / tile}
}

// tiles calls fn with the index of every tile under r.
func (g tileGrid) tiles(r image.Rectangle, fn func(i int)) {
	if r.Empty() {
		return
	}
	x0, y0 := max(r.Min.X, 0)/g.tile, max(r.Min.Y, 0)/g.tile
	x1, y1 := min((r.Max.X+g.tile-1)/g.tile, g.cols), min((r.Max.Y+g.tile-1)/g.tile, g.rows)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			fn(y*g.cols + x)
		}
	}
}
