// Package linkem emulates a network link between two network namespaces
// in user space, as netem would where the kernel has it (this project's
// machines have htb and tbf but no sch_netem): per direction a rate at the
// bottleneck (each packet takes its size at that rate to send), a one-way
// delay, random loss and a bounded drop-tail queue, like a home router's.
//
// Each end is a TUN device in its namespace. One process reads the IP
// packets each end sends, decides their fate (see Direction) and writes
// them into the other end at their arrival time. The devices are opened
// from a thread that joined each namespace; after that their file
// descriptors work from any goroutine. New forwards in the calling
// process; NewProcess in a child process of its own, so that the caller's
// load does not delay the link (forwarder.go).
package linkem

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/assist-project/assist/internal/netns"
)

// MTU of the emulated link, like Ethernet's.
const MTU = 1500

// Endpoint is one end of a link.
type Endpoint struct {
	// Netns is the namespace the end's device lives in.
	Netns string
	// Device is the TUN device's name, such as "wan0".
	Device string
	// Addr is the device's address with the link's prefix, such as
	// 10.99.0.1/30; the other end's address must be in the same prefix.
	Addr netip.Prefix
}

// Stats counts one direction's packets.
type Stats struct {
	Packets   uint64 // read from the sending end
	Bytes     uint64 // their bytes
	Delivered uint64 // written into the receiving end
	// DeliveredBytes are the delivered packets' bytes.
	DeliveredBytes uint64
	Lost           uint64 // dropped at random (Direction.Loss)
	QueueDrops     uint64 // dropped because the queue was full
	// Late is the time the delivered packets were written into the
	// receiving end after they were due, in all, and MaxLate the most
	// for one packet: what the emulator added beyond its settings (a
	// packet is never written before it is due). A program busy on all
	// cores delays the emulator's writes; NewProcess keeps this smaller.
	Late, MaxLate time.Duration
	// Queued is the time the admitted packets waited in the queue for
	// the bottleneck, in all: a standing queue shows here.
	Queued time.Duration
}

// Link is a running emulated link. Close stops it and removes both
// devices.
type Link struct {
	a, b   *os.File
	ab, ba *pipe
	wg     sync.WaitGroup
	once   sync.Once
	// proc is the forwarding process of a link made by NewProcess; then
	// the fields above are unused.
	proc *forwarder
}

// validate checks the directions' settings.
func validate(ds ...Direction) error {
	for _, d := range ds {
		if d.Loss < 0 || d.Loss > 1 || d.Rate < 0 || d.Delay < 0 || d.Queue < 0 {
			return fmt.Errorf("linkem: bad direction %+v: want loss 0..1 and no negative rate, delay or queue", d)
		}
	}
	return nil
}

// New creates a TUN device at each end, gives each its address, brings
// them up and starts forwarding: aToB shapes what a sends, bToA what b
// sends. Routes beyond the link's prefix are the caller's.
func New(a, b Endpoint, aToB, bToA Direction) (*Link, error) {
	if err := validate(aToB, bToA); err != nil {
		return nil, err
	}
	fa, fb, err := openTUNs(a, b)
	if err != nil {
		return nil, err
	}
	return forward(fa, fb, aToB, bToA, a.Netns+"->"+b.Netns, b.Netns+"->"+a.Netns), nil
}

// openTUNs opens both ends' devices.
func openTUNs(a, b Endpoint) (fa, fb *os.File, err error) {
	if fa, err = openTUN(a); err != nil {
		return nil, nil, err
	}
	if fb, err = openTUN(b); err != nil {
		fa.Close()
		return nil, nil, err
	}
	return fa, fb, nil
}

// forward starts forwarding between the open devices fa and fb.
func forward(fa, fb *os.File, aToB, bToA Direction, nameAB, nameBA string) *Link {
	seed := rand.Uint64()
	l := &Link{a: fa, b: fb, ab: newPipe(aToB, seed, nameAB), ba: newPipe(bToA, seed+1, nameBA)}
	l.wg.Add(4)
	go l.ab.read(&l.wg, fa)
	go l.ab.write(&l.wg, fb)
	go l.ba.read(&l.wg, fb)
	go l.ba.write(&l.wg, fa)
	return l
}

// Set changes both directions' settings for the packets that arrive from
// now on; packets already on their way keep their times, and the new
// queue starts empty. The counters go on.
func (l *Link) Set(aToB, bToA Direction) error {
	if err := validate(aToB, bToA); err != nil {
		return err
	}
	if l.proc != nil {
		return l.proc.set(aToB, bToA)
	}
	seed := rand.Uint64()
	l.ab.set(aToB, seed)
	l.ba.set(bToA, seed+1)
	return nil
}

// Stats returns the counters of both directions.
func (l *Link) Stats() (aToB, bToA Stats) {
	if l.proc != nil {
		return l.proc.stats()
	}
	return l.ab.stats(), l.ba.stats()
}

// Close stops forwarding and closes both devices, which removes them from
// their namespaces. Packets still on their way are dropped.
func (l *Link) Close() error {
	var err error
	l.once.Do(func() {
		if l.proc != nil {
			err = l.proc.close()
			return
		}
		close(l.ab.stop)
		close(l.ba.stop)
		err = errors.Join(l.a.Close(), l.b.Close())
		l.wg.Wait()
	})
	return err
}

// openTUN creates e's device in its namespace, configured and up.
func openTUN(e Endpoint) (*os.File, error) {
	if len(e.Device) == 0 || len(e.Device) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("linkem: bad device name %q", e.Device)
	}
	var f *os.File
	err := netns.Do(e.Netns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("linkem: open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(e.Device)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("linkem: %s: %w", e.Device, err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("linkem: create TUN %s in %s: %w", e.Device, e.Netns, err)
		}
		// Non-blocking, so the runtime's poller serves it and Close
		// interrupts a pending Read.
		f = os.NewFile(uintptr(fd), e.Device)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", e.Netns, "link", "set", e.Device, "mtu", fmt.Sprint(MTU)},
		{"-n", e.Netns, "addr", "add", e.Addr.String(), "dev", e.Device},
		{"-n", e.Netns, "link", "set", e.Device, "up"},
	} {
		if err := netns.IP(args...); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// packet is one IP packet on its way, due at the receiving end at at.
type packet struct {
	data []byte
	at   time.Time
}

// pipe is one direction: a reader that admits packets through the shaper
// into a FIFO, and a writer that delivers them on time.
type pipe struct {
	name  string
	mu    sync.Mutex // guards sh
	sh    *shaper
	q     chan packet
	stop  chan struct{}
	count struct {
		packets, bytes, delivered, deliveredBytes, lost, queueDrops atomic.Uint64
		late, maxLate, queued                                       atomic.Int64 // ns
	}
}

// pipeSlots bounds the packets on their way in one direction; admitted
// packets beyond it (far more than any queue and delay the benchmark uses
// hold) are counted as queue drops.
const pipeSlots = 1 << 14

func newPipe(d Direction, seed uint64, name string) *pipe {
	return &pipe{name: name, sh: newShaper(d, seed), q: make(chan packet, pipeSlots), stop: make(chan struct{})}
}

func (p *pipe) set(d Direction, seed uint64) {
	sh := newShaper(d, seed)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Never deliver before a packet already admitted: arrival times
	// must not decrease along the FIFO.
	sh.floor = p.sh.lastArrival()
	p.sh = sh
}

func (p *pipe) stats() Stats {
	return Stats{
		Packets: p.count.packets.Load(), Bytes: p.count.bytes.Load(), Delivered: p.count.delivered.Load(),
		DeliveredBytes: p.count.deliveredBytes.Load(),
		Lost:           p.count.lost.Load(), QueueDrops: p.count.queueDrops.Load(),
		Late: time.Duration(p.count.late.Load()), MaxLate: time.Duration(p.count.maxLate.Load()),
		Queued: time.Duration(p.count.queued.Load()),
	}
}

// read takes packets from src until it is closed.
func (p *pipe) read(wg *sync.WaitGroup, src *os.File) {
	defer wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := src.Read(buf)
		if err != nil {
			select {
			case <-p.stop:
			default:
				slog.Error("linkem: read stopped", "dir", p.name, "err", err)
			}
			return
		}
		p.count.packets.Add(1)
		p.count.bytes.Add(uint64(n))
		p.mu.Lock()
		at, v := p.sh.admit(time.Now(), n)
		waited := p.sh.waited
		p.mu.Unlock()
		switch v {
		case lost:
			p.count.lost.Add(1)
			continue
		case queueFull:
			p.count.queueDrops.Add(1)
			continue
		}
		p.count.queued.Add(int64(waited))
		select {
		case p.q <- packet{data: append([]byte(nil), buf[:n]...), at: at}:
		default:
			p.count.queueDrops.Add(1)
		}
	}
}

// write delivers each packet into dst at its time, until stop.
func (p *pipe) write(wg *sync.WaitGroup, dst io.Writer) {
	defer wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var pk packet
		select {
		case pk = <-p.q:
		case <-p.stop:
			return
		}
		if !sleepUntil(pk.at, timer, p.stop) {
			return
		}
		_, err := dst.Write(pk.data)
		late := time.Since(pk.at)
		if err != nil {
			select {
			case <-p.stop:
				return
			default:
			}
			// The receiving stack refused one packet (a full queue, a
			// device going down): a lost packet, as on a real link.
			p.count.lost.Add(1)
			continue
		}
		p.count.delivered.Add(1)
		p.count.deliveredBytes.Add(uint64(len(pk.data)))
		p.count.late.Add(int64(late))
		if int64(late) > p.count.maxLate.Load() {
			p.count.maxLate.Store(int64(late)) // only this goroutine stores
		}
	}
}

// sleepUntil returns once at has come (true), or when stop closes
// (false). The runtime's timers wake up to a millisecond late, which at
// 20 Mbit/s is nearly two packets' sending time, so the last stretch is
// slept in the kernel, which keeps its own timers to microseconds.
func sleepUntil(at time.Time, timer *time.Timer, stop <-chan struct{}) bool {
	for {
		wait := time.Until(at)
		if wait <= 0 {
			return true
		}
		if wait > preciseSleep {
			timer.Reset(wait - preciseSleep)
			select {
			case <-timer.C:
			case <-stop:
				return false
			}
			continue
		}
		ts := unix.NsecToTimespec(int64(wait))
		if err := unix.Nanosleep(&ts, nil); err != nil && err != unix.EINTR {
			// Cannot happen with a valid duration; the runtime's
			// timer then does the rest.
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				return false
			}
		}
	}
}

// preciseSleep is the longest wait slept in the kernel rather than on the
// runtime's timers: it holds a thread for at most that long.
const preciseSleep = 2 * time.Millisecond
