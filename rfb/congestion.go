package rfb

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/assist-project/assist/link"
)

// Fences as acknowledgements.
//
// A viewer that speaks Fence and has turned continuous updates on gets
// updates without asking, so nothing it sends says how far it has got. The
// server therefore follows each write that carries an update with a
// ServerFence asking for a reply (flags Request and BlockBefore: the viewer
// answers once it has handled everything before the fence). The reply's
// arrival acknowledges every byte up to the fence, and feeds a
// link.Estimator like the multiplexer's credit does for session streams.
// The payload is ours (a magic and a sequence number), so a reply to a
// fence the viewer made up, or to one of the viewer's own, is told apart
// and ignored. A viewer that stops answering would stop its own updates;
// after pingTimeout without a reply the connection stops pacing instead.
const (
	pingMagic   = "ASpg"
	maxPings    = 64
	pingTimeout = 10 * time.Second
)

// fencePacer paces one viewer by fences. Guarded by conn.mu.
type fencePacer struct {
	// active: the viewer speaks Fence, continuous updates are on and the
	// connection does not pace itself.
	active bool
	// broken: a ping went unanswered for pingTimeout; never active again.
	broken  bool
	est     *link.Estimator
	seq     uint32
	pending []ping
}

type ping struct {
	seq uint32
	end uint64 // the stream offset just after the fence
	at  time.Time
}

// setActive turns fence pacing on or off; an estimate is kept across.
func (f *fencePacer) setActive(on bool) {
	f.active = on && !f.broken
	if f.active && f.est == nil {
		f.est = link.New()
	}
}

// room reports whether an update may be produced at now.
func (f *fencePacer) room(now time.Time) bool {
	if !f.active {
		return true
	}
	if len(f.pending) > 0 && now.Sub(f.pending[0].at) > pingTimeout {
		f.broken, f.active = true, false
		return true
	}
	return len(f.pending) < maxPings && f.est.Room(now)
}

// wrote records a write of n bytes at now. ping says the write ends with
// the fence last returned by nextPing.
func (f *fencePacer) wrote(n int, now time.Time, pinged bool) {
	if !f.active || n == 0 {
		return
	}
	limited := f.est.InFlight()+n >= f.est.Window(now)
	f.est.Sent(n, now, !limited)
	if pinged {
		f.pending = append(f.pending, ping{seq: f.seq, end: f.est.Estimate(now).Sent, at: now})
	}
}

// nextPing returns the fence to append after an update, or false when
// none is due.
func (f *fencePacer) nextPing() (fence, bool) {
	if !f.active || len(f.pending) >= maxPings {
		return fence{}, false
	}
	f.seq++
	data := binary.BigEndian.AppendUint32([]byte(pingMagic), f.seq)
	return fence{flags: fenceRequest | fenceBlockBefore, data: data}, true
}

// reply handles a ClientFence without the Request flag: the answer to
// one of our pings, or not. It reports whether it was one.
func (f *fencePacer) reply(data []byte, now time.Time) bool {
	if len(data) != len(pingMagic)+4 || !bytes.HasPrefix(data, []byte(pingMagic)) || f.est == nil {
		return false
	}
	seq := binary.BigEndian.Uint32(data[len(pingMagic):])
	for i, p := range f.pending {
		if p.seq == seq {
			// Replies come in order: earlier pings are answered too.
			f.est.Acked(p.end, now)
			f.pending = f.pending[i+1:]
			return true
		}
	}
	return false
}
