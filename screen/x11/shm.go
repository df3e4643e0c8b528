package x11

import (
	"fmt"
	"image"

	"github.com/jezek/xgb/shm"
	"golang.org/x/sys/unix"
)

// shmSegment is a System V shared memory segment attached both here and
// in the X server.
type shmSegment struct {
	seg shm.Seg // the server's name for it
	mem []byte  // our mapping
}

// allocSegment replaces d.seg with a segment that holds a full frame of
// size. The caller holds grabMu (or is Open).
func (d *Display) allocSegment(size image.Point) error {
	d.freeSegment()
	n := 4 * size.X * size.Y
	if n == 0 {
		n = 4
	}
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, n, unix.IPC_CREAT|0o600)
	if err != nil {
		return fmt.Errorf("x11: shmget %d bytes: %w", n, err)
	}
	// Whatever happens next, the segment must be marked for removal so
	// that it vanishes once both sides detach, even if we crash.
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return fmt.Errorf("x11: shmat: %w", err)
	}
	seg, err := shm.NewSegId(d.conn)
	if err == nil {
		err = shm.AttachChecked(d.conn, seg, uint32(id), false).Check()
	}
	unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if err != nil {
		unix.SysvShmDetach(mem)
		return fmt.Errorf("x11: MIT-SHM attach: %w", err)
	}
	d.seg = &shmSegment{seg: seg, mem: mem}
	d.segFor = size
	return nil
}

// freeSegment detaches d.seg on both sides.
func (d *Display) freeSegment() {
	if d.seg == nil {
		return
	}
	// The server detaches by itself when the connection is gone; this
	// request is for a live connection and harmless on a dead one.
	shm.Detach(d.conn, d.seg.seg)
	unix.SysvShmDetach(d.seg.mem)
	d.seg = nil
}
