package filetransfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// State is where one transfer stands.
type State string

// The states of a transfer, as events report them.
const (
	// Offered: the file was offered; the receiver has not answered.
	Offered State = "offered"
	// Transferring: bytes are flowing (Event.Done says how many).
	Transferring State = "transferring"
	// Completed: the receiver has the whole file and its hash matched.
	Completed State = "completed"
	// Refused: the receiver said no before any byte was sent.
	Refused State = "refused"
	// Cancelled: one side stopped the transfer; nothing is kept.
	Cancelled State = "cancelled"
	// Failed: the transfer broke (a full disk, a damaged file).
	Failed State = "failed"
	// Interrupted: the connection went away. The receiver keeps what
	// arrived; offering the same file again resumes from there.
	Interrupted State = "interrupted"
)

// Event reports a change in one transfer, or its progress.
type Event struct {
	ID       ID
	Incoming bool   // a file coming to this side
	Name     string // the file's name (an incoming one sanitised)
	Size     uint64
	Done     uint64 // bytes the receiver has, counting a resumed part
	State    State
	// Resumed is where a resumed transfer started again (0 if it did
	// not resume).
	Resumed uint64
	// Path is where a completed incoming file was saved.
	Path string
	// SHA256 is the whole file's hash, set on Completed (both sides
	// agree on it: the receiver checked it), for the audit trail.
	SHA256 [32]byte
	// Reason says why a transfer was refused, cancelled or failed, in
	// words for people.
	Reason string
}

// Offer is a file the peer wants to send, waiting for this side's
// answer (Config.Ask). Exactly one of Accept and Refuse takes effect.
type Offer struct {
	ID   ID
	Name string // sanitised: safe to show and to save under
	Size uint64
	ep   *Endpoint
	once *sync.Once
}

// Accept takes the file: it goes to Config.Dir (or Config.Store) under
// Name (or "Name (2)" and so on if that exists), once its free space has
// been checked.
func (o Offer) Accept() {
	o.once.Do(func() { o.ep.wg.Go(func() { o.ep.accept(o.ID) }) })
}

// Refuse declines the file; the sender is told reason.
func (o Offer) Refuse(reason string) {
	o.once.Do(func() { o.ep.refuse(o.ID, reason) })
}

// Config sets up an Endpoint.
type Config struct {
	// Dir is where incoming files are saved, and their partial files
	// kept meanwhile. "" refuses every incoming file, unless Store is set.
	Dir string
	// Store, if set, keeps incoming files instead of Dir (a program with
	// no disk brings its own).
	Store Store
	// Allowed, if set, is asked before every file offered in either
	// direction and before every piece of an incoming file is written: a
	// non-nil error (its text is told to the peer) refuses or cancels.
	// The session passes the novice's files right.
	Allowed func() error
	// Ask, if set, receives each incoming offer; the application must
	// answer it (Offer.Accept or Refuse) and must not block. Nil accepts
	// every allowed offer. Offers that resume a partial file already
	// accepted are not asked again.
	Ask func(Offer)
	// OnEvent, if set, receives every change and progress (at most about
	// ten times a second per transfer). It must not block.
	OnEvent func(Event)
	// FreeSpace measures the free space of a folder; nil means
	// FreeSpace. Tests inject it.
	FreeSpace func(dir string) (uint64, error)
	Logger    *slog.Logger
}

// MaxIncoming is how many incoming files may be offered or in flight at
// once; further offers are refused.
const MaxIncoming = 8

// Endpoint is one side of the file channel of a session: it sends the
// files it is given and receives the files the peer offers. It owns a
// reader goroutine, a writer goroutine for short replies (so the reader
// never waits for the channel's credit, which would deadlock two sides
// sending at once), and one goroutine per outgoing file.
type Endpoint struct {
	rw  io.ReadWriteCloser
	cfg Config
	log *slog.Logger

	wmu sync.Mutex // one frame at a time on rw

	mu     sync.Mutex
	qcond  sync.Cond
	queue  []frame
	out    map[ID]*outgoing
	in     map[ID]*incoming
	err    error // why the endpoint stopped; nil while it runs
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
}

type outgoing struct {
	id     ID
	open   func() (io.ReaderAt, io.Closer, error)
	name   string
	size   uint64
	answer chan frame // accept, refuse, cancel
	result chan frame // result, cancel
	cancel context.CancelFunc
	// peerReason is why the peer cancelled (guarded by Endpoint.mu).
	peerReason string
}

type incoming struct {
	id      ID
	name    string
	size    uint64
	active  bool // accepted: part is open
	part    Part
	written uint64
	resumed uint64
	hash    hash.Hash
	last    time.Time
	once    sync.Once
}

// New starts an endpoint on rw, which it owns (Close closes it).
func New(rw io.ReadWriteCloser, cfg Config) *Endpoint {
	if cfg.FreeSpace == nil {
		cfg.FreeSpace = FreeSpace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Store == nil && cfg.Dir != "" {
		cfg.Store = DirStore(cfg.Dir, cfg.FreeSpace)
	}
	ep := &Endpoint{rw: rw, cfg: cfg, log: cfg.Logger, out: make(map[ID]*outgoing),
		in: make(map[ID]*incoming), done: make(chan struct{})}
	ep.qcond.L = &ep.mu
	ep.wg.Go(ep.readLoop)
	ep.wg.Go(ep.writeLoop)
	return ep
}

// Done is closed when the endpoint stops.
func (ep *Endpoint) Done() <-chan struct{} { return ep.done }

// Err says why the endpoint stopped: io.EOF when the channel closed, an
// error wrapping ErrProtocol when the peer broke the protocol.
func (ep *Endpoint) Err() error {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.err
}

// Close stops the endpoint and waits for its goroutines. Transfers in
// flight are interrupted; partial incoming files are kept for a resume.
func (ep *Endpoint) Close() error {
	ep.stop(errors.New("filetransfer: closed"))
	ep.wg.Wait()
	return nil
}

func (ep *Endpoint) stop(err error) {
	ep.closed.Do(func() {
		ep.mu.Lock()
		ep.err = err
		close(ep.done)
		ep.qcond.Broadcast()
		for _, o := range ep.out {
			o.cancel()
		}
		ep.mu.Unlock()
		ep.rw.Close()
	})
}

func (ep *Endpoint) emit(ev Event) {
	if ep.cfg.OnEvent != nil {
		ep.cfg.OnEvent(ev)
	}
}

func (ep *Endpoint) allowed() error {
	if ep.cfg.Allowed == nil {
		return nil
	}
	return ep.cfg.Allowed()
}

// enqueue sends a short frame through the writer goroutine.
func (ep *Endpoint) enqueue(f frame) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.queue = append(ep.queue, f)
	ep.qcond.Signal()
}

func (ep *Endpoint) writeLoop() {
	var b []byte
	for {
		ep.mu.Lock()
		for len(ep.queue) == 0 && ep.err == nil {
			ep.qcond.Wait()
		}
		if ep.err != nil {
			ep.mu.Unlock()
			return
		}
		f := ep.queue[0]
		ep.queue = ep.queue[1:]
		ep.mu.Unlock()
		var err error
		if b, err = appendFrame(b[:0], &f); err == nil {
			err = ep.write(b)
		}
		if err != nil {
			ep.stop(fmt.Errorf("filetransfer: write: %w", err))
			return
		}
	}
}

func (ep *Endpoint) write(b []byte) error {
	ep.wmu.Lock()
	defer ep.wmu.Unlock()
	_, err := ep.rw.Write(b)
	return err
}

// fileID names the transfer of the file at path as it is now: the same
// file offered again (after a drop, or by a new run of assist) gets the
// same ID, so the receiver can resume it; a changed file gets another.
func fileID(path string, fi fs.FileInfo) ID {
	h := sha256.New()
	fmt.Fprintf(h, "assist-file\x00%s\x00%d\x00%d", path, fi.Size(), fi.ModTime().UnixNano())
	var id ID
	copy(id[:], h.Sum(nil))
	return id
}

// Send offers the file at path to the peer and, once accepted, sends it
// (from where an earlier, interrupted transfer of it stopped, if the
// receiver still has that part). It returns at once with the transfer's
// ID; events tell the rest. ctx cancels the transfer.
func (ep *Endpoint) Send(ctx context.Context, path string) (ID, error) {
	if err := ep.allowed(); err != nil {
		return ID{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ID{}, fmt.Errorf("filetransfer: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return ID{}, fmt.Errorf("cannot send %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return ID{}, fmt.Errorf("cannot send %s: not a regular file", path)
	}
	if fi.Size() > MaxSize {
		return ID{}, fmt.Errorf("cannot send %s: larger than 1 TiB", path)
	}
	open := func() (io.ReaderAt, io.Closer, error) {
		f, err := os.Open(abs)
		return f, f, err
	}
	return ep.start(ctx, fileID(abs, fi), filepath.Base(abs), uint64(fi.Size()), open)
}

// Source is a file to send that is not a path on this computer's disk:
// a browser's File.
type Source struct {
	// Name is the file's name; the receiver sees it sanitised.
	Name string
	Size uint64
	// Key names this content as it is now (for a browser's File: its
	// name, size and time of last change), so that offering it again
	// resumes an interrupted transfer.
	Key string
	// Data reads the file; it is not closed.
	Data io.ReaderAt
}

// SendSource offers src to the peer, as Send offers a file.
func (ep *Endpoint) SendSource(ctx context.Context, src Source) (ID, error) {
	if err := ep.allowed(); err != nil {
		return ID{}, err
	}
	if src.Size > MaxSize {
		return ID{}, fmt.Errorf("cannot send %s: larger than 1 TiB", src.Name)
	}
	h := sha256.New()
	fmt.Fprintf(h, "assist-source\x00%s\x00%s\x00%d", src.Key, src.Name, src.Size)
	var id ID
	copy(id[:], h.Sum(nil))
	open := func() (io.ReaderAt, io.Closer, error) { return src.Data, io.NopCloser(nil), nil }
	return ep.start(ctx, id, src.Name, src.Size, open)
}

// start registers and starts one outgoing transfer.
func (ep *Endpoint) start(ctx context.Context, id ID, name string, size uint64, open func() (io.ReaderAt, io.Closer, error)) (ID, error) {
	name = clip(SanitizeName(name), MaxName)
	o := &outgoing{id: id, open: open, name: name, size: size,
		answer: make(chan frame, 1), result: make(chan frame, 1)}
	ctx, o.cancel = context.WithCancel(ctx)
	ep.mu.Lock()
	if ep.err != nil {
		ep.mu.Unlock()
		o.cancel()
		return ID{}, fmt.Errorf("cannot send %s: the connection is closed", name)
	}
	if _, dup := ep.out[o.id]; dup {
		ep.mu.Unlock()
		o.cancel()
		return ID{}, fmt.Errorf("%s is already being sent", name)
	}
	ep.out[o.id] = o
	ep.mu.Unlock()
	ep.wg.Go(func() { ep.send(ctx, o) })
	return o.id, nil
}

// Cancel stops transfer id in either direction and tells the peer.
func (ep *Endpoint) Cancel(id ID, reason string) bool {
	ep.mu.Lock()
	o := ep.out[id]
	inc := ep.in[id]
	ep.mu.Unlock()
	switch {
	case o != nil:
		ep.enqueue(frame{Kind: kindCancel, ID: id, Reason: reason})
		o.cancel()
		return true
	case inc != nil:
		ep.dropIncoming(inc, Cancelled, reason, true)
		return true
	}
	return false
}

func (ep *Endpoint) send(ctx context.Context, o *outgoing) {
	ev := Event{ID: o.id, Name: o.name, Size: o.size, State: Offered}
	finish := func(st State, reason string) {
		ep.mu.Lock()
		delete(ep.out, o.id)
		ep.mu.Unlock()
		o.cancel()
		ev.State, ev.Reason = st, reason
		ep.emit(ev)
	}
	// Why a stop of ctx happened: the endpoint's end, or a cancel.
	stopped := func() (State, string) {
		select {
		case <-ep.done:
			return Interrupted, "the connection was lost"
		default:
		}
		ep.mu.Lock()
		defer ep.mu.Unlock()
		if o.peerReason != "" {
			return Cancelled, o.peerReason
		}
		return Cancelled, "cancelled"
	}
	f, closer, err := o.open()
	if err != nil {
		finish(Failed, "cannot read the file: "+err.Error())
		return
	}
	defer closer.Close()
	ep.emit(ev)
	ep.enqueue(frame{Kind: kindOffer, ID: o.id, Size: o.size, Name: o.name})
	var ans frame
	select {
	case ans = <-o.answer:
	case <-ctx.Done():
		finish(stopped())
		return
	}
	switch ans.Kind {
	case kindRefuse:
		finish(Refused, ans.Reason)
		return
	case kindCancel:
		finish(Cancelled, ans.Reason)
		return
	}
	// The receiver claims to hold the first ans.Offset bytes with the
	// hash it sent: check it against the file before trusting it, or
	// start over.
	h := sha256.New()
	offset := ans.Offset
	if offset > o.size {
		offset = 0
	}
	if offset > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, int64(offset))); err != nil {
			finish(Failed, "cannot read the file: "+err.Error())
			return
		}
		if !bytes.Equal(h.Sum(nil), ans.Hash[:]) {
			ep.log.Info("file transfer: the receiver's part differs: starting over", "name", o.name, "offset", offset)
			offset = 0
			h.Reset()
		}
	}
	ev.State, ev.Resumed, ev.Done = Transferring, offset, offset
	ep.emit(ev)
	buf := make([]byte, headerLen+idLen+8+Chunk)
	last := time.Now()
	pos := offset
	for pos < o.size {
		if err := ctx.Err(); err != nil {
			finish(stopped())
			return
		}
		if err := ep.allowed(); err != nil {
			ep.enqueue(frame{Kind: kindCancel, ID: o.id, Reason: err.Error()})
			finish(Cancelled, err.Error())
			return
		}
		n := int(min(uint64(Chunk), o.size-pos))
		body := idLen + 8 + n
		b := buf[:headerLen+body]
		b[0], b[1], b[2], b[3] = kindData, byte(body>>16), byte(body>>8), byte(body)
		copy(b[headerLen:], o.id[:])
		binary.BigEndian.PutUint64(b[headerLen+idLen:], pos)
		if _, err := io.ReadFull(io.NewSectionReader(f, int64(pos), int64(n)), b[headerLen+idLen+8:]); err != nil {
			ep.enqueue(frame{Kind: kindCancel, ID: o.id, Reason: "the sender could not read the file"})
			finish(Failed, "cannot read the file (did it change?): "+err.Error())
			return
		}
		h.Write(b[headerLen+idLen+8:])
		if err := ep.write(b); err != nil {
			ep.stop(fmt.Errorf("filetransfer: write: %w", err))
			finish(Interrupted, "the connection was lost")
			return
		}
		pos += uint64(n)
		if now := time.Now(); now.Sub(last) >= progressEvery || pos == o.size {
			last = now
			ev.Done = pos
			ep.emit(ev)
		}
	}
	var done frame
	done.Kind, done.ID = kindDone, o.id
	copy(done.Hash[:], h.Sum(nil))
	ep.enqueue(done)
	select {
	case r := <-o.result:
		switch {
		case r.Kind == kindCancel:
			finish(Cancelled, r.Reason)
		case r.OK:
			ev.Done, ev.SHA256 = o.size, done.Hash
			finish(Completed, "")
		default:
			finish(Failed, r.Reason)
		}
	case <-ctx.Done():
		finish(stopped())
	}
}

// progressEvery spaces progress events.
const progressEvery = 100 * time.Millisecond

func (ep *Endpoint) readLoop() {
	br := &byteReader{r: ep.rw}
	var buf []byte
	var f frame
	for {
		var err error
		buf, err = readFrame(br, buf, &f)
		if err == nil {
			err = ep.handle(&f)
		}
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				ep.log.Warn("file transfer: the peer broke the protocol; file transfers stop", "err", err)
			}
			ep.stop(err)
			ep.interruptIncoming()
			return
		}
	}
}

// byteReader is an io.Reader; a bufio.Reader would only add a copy, as
// the mux's channels already buffer.
type byteReader struct{ r io.Reader }

func (b *byteReader) Read(p []byte) (int, error) { return b.r.Read(p) }

func (ep *Endpoint) handle(f *frame) error {
	switch f.Kind {
	case kindOffer:
		return ep.offered(f)
	case kindAccept, kindRefuse:
		return ep.toOutgoing(f, false)
	case kindResult:
		return ep.toOutgoing(f, true)
	case kindCancel:
		ep.mu.Lock()
		o, inc := ep.out[f.ID], ep.in[f.ID]
		if o != nil {
			o.peerReason = "the receiver cancelled: " + f.Reason
		}
		ep.mu.Unlock()
		if o != nil {
			select {
			case o.answer <- *f:
			default:
			}
			select {
			case o.result <- *f:
			default:
			}
			o.cancel()
		}
		if inc != nil {
			ep.dropIncoming(inc, Cancelled, "the sender cancelled: "+f.Reason, false)
		}
		return nil
	case kindData:
		return ep.data(f)
	case kindDone:
		return ep.finished(f)
	}
	return protocolError("frame kind %d", f.Kind)
}

// toOutgoing hands an answer or a result to its outgoing transfer. A
// transfer already over (cancelled here) ignores it.
func (ep *Endpoint) toOutgoing(f *frame, result bool) error {
	ep.mu.Lock()
	o := ep.out[f.ID]
	ep.mu.Unlock()
	if o == nil {
		return nil
	}
	c := o.answer
	if result {
		c = o.result
	}
	select {
	case c <- *f:
		return nil
	default:
		return protocolError("second answer for one file")
	}
}

// offered handles an incoming offer: refused at once when files are not
// allowed, there is nowhere to save them or too many are in flight;
// resumed without asking when its partial file exists; else asked.
func (ep *Endpoint) offered(f *frame) error {
	name := SanitizeName(f.Name)
	ep.mu.Lock()
	if _, dup := ep.in[f.ID]; dup {
		ep.mu.Unlock()
		return protocolError("second offer of one file")
	}
	n := len(ep.in)
	ep.mu.Unlock()
	refuse := func(reason string) error {
		ep.log.Info("file transfer: incoming file refused", "name", name, "size", f.Size, "reason", reason)
		ep.emit(Event{ID: f.ID, Incoming: true, Name: name, Size: f.Size, State: Refused, Reason: reason})
		ep.enqueue(frame{Kind: kindRefuse, ID: f.ID, Reason: reason})
		return nil
	}
	if err := ep.allowed(); err != nil {
		return refuse(err.Error())
	}
	if ep.cfg.Store == nil {
		return refuse("this side does not take files")
	}
	if n >= MaxIncoming {
		return refuse("too many files at once: send it when the others have arrived")
	}
	inc := &incoming{id: f.ID, name: name, size: f.Size}
	ep.mu.Lock()
	ep.in[f.ID] = inc
	ep.mu.Unlock()
	ev := Event{ID: f.ID, Incoming: true, Name: name, Size: f.Size, State: Offered}
	ep.emit(ev)
	id := f.ID // f is the reader's, reused for the next frame
	if ep.cfg.Store.Has(id) || ep.cfg.Ask == nil {
		ep.wg.Go(func() { ep.accept(id) })
		return nil
	}
	ep.cfg.Ask(Offer{ID: f.ID, Name: name, Size: f.Size, ep: ep, once: &inc.once})
	return nil
}

func (ep *Endpoint) refuse(id ID, reason string) {
	ep.mu.Lock()
	inc := ep.in[id]
	delete(ep.in, id)
	ep.mu.Unlock()
	if inc == nil {
		return
	}
	if reason == "" {
		reason = "refused"
	}
	ep.emit(Event{ID: id, Incoming: true, Name: inc.name, Size: inc.size, State: Refused, Reason: reason})
	ep.enqueue(frame{Kind: kindRefuse, ID: id, Reason: reason})
}

// accept opens (or reopens) the partial file of an accepted offer,
// checks the free space for what is missing, and tells the sender where
// to start and what this side holds.
func (ep *Endpoint) accept(id ID) {
	ep.mu.Lock()
	inc := ep.in[id]
	ep.mu.Unlock()
	if inc == nil {
		return
	}
	fail := func(reason string) {
		ep.log.Info("file transfer: incoming file not accepted", "name", inc.name, "reason", reason)
		ep.refuse(id, reason)
	}
	file, err := ep.cfg.Store.Open(id)
	if err != nil {
		fail(err.Error())
		return
	}
	h := sha256.New()
	have, err := io.Copy(h, file)
	if err != nil || uint64(have) > inc.size {
		// Unreadable or longer than the file: start over.
		have, h = 0, sha256.New()
		if err := file.Truncate(0); err != nil {
			file.Close()
			fail("cannot save the file: " + err.Error())
			return
		}
	}
	if need := inc.size - uint64(have); need > 0 {
		free, err := ep.cfg.Store.FreeSpace()
		if err != nil {
			file.Close()
			fail("cannot tell the free space: " + err.Error())
			return
		}
		if free < need {
			if have == 0 {
				file.Remove()
			} else {
				file.Close()
			}
			fail(fmt.Sprintf("not enough free space: the file needs %s more, and %s is free", Size(need), Size(free)))
			return
		}
	}
	acc := frame{Kind: kindAccept, ID: id, Offset: uint64(have)}
	copy(acc.Hash[:], h.Sum(nil))
	ep.mu.Lock()
	if ep.in[id] != inc || ep.err != nil {
		ep.mu.Unlock()
		file.Close()
		return
	}
	inc.active, inc.part, inc.written, inc.resumed, inc.hash = true, file, uint64(have), uint64(have), h
	ep.mu.Unlock()
	ep.emit(Event{ID: id, Incoming: true, Name: inc.name, Size: inc.size, Done: uint64(have), Resumed: uint64(have), State: Transferring})
	ep.enqueue(acc)
}

func (ep *Endpoint) incomingFor(f *frame) (*incoming, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	inc := ep.in[f.ID]
	if inc == nil {
		return nil, nil // cancelled here; the sender has not heard yet
	}
	if !inc.active {
		return nil, protocolError("data for a file not accepted")
	}
	return inc, nil
}

func (ep *Endpoint) data(f *frame) error {
	inc, err := ep.incomingFor(f)
	if inc == nil {
		return err
	}
	if err := ep.allowed(); err != nil {
		if errors.Is(err, ErrSessionOver) {
			// The connection went and ended the session before the
			// channel saw it: keep the part, as interruptIncoming does.
			ep.interruptOne(inc)
			return nil
		}
		ep.dropIncoming(inc, Cancelled, err.Error(), true)
		return nil
	}
	if f.Offset == 0 && inc.written > 0 {
		// The sender's file differs from our part: start over.
		if err := inc.part.Truncate(0); err != nil {
			ep.dropIncoming(inc, Failed, "cannot save the file: "+err.Error(), true)
			return nil
		}
		ep.mu.Lock()
		inc.written, inc.resumed = 0, 0
		ep.mu.Unlock()
		inc.hash.Reset()
	}
	if f.Offset != inc.written || inc.written+uint64(len(f.Data)) > inc.size {
		return protocolError("data at %d for a file with %d of %d bytes", f.Offset, inc.written, inc.size)
	}
	if _, err := inc.part.WriteAt(f.Data, int64(f.Offset)); err != nil {
		reason := "cannot save the file: " + err.Error()
		if errors.Is(err, syscall.ENOSPC) {
			reason = "the disk is full"
		}
		ep.dropIncoming(inc, Failed, reason, true)
		return nil
	}
	inc.hash.Write(f.Data)
	ep.mu.Lock()
	inc.written += uint64(len(f.Data))
	ep.mu.Unlock()
	if now := time.Now(); now.Sub(inc.last) >= progressEvery || inc.written == inc.size {
		inc.last = now
		ep.emit(Event{ID: inc.id, Incoming: true, Name: inc.name, Size: inc.size, Done: inc.written,
			Resumed: inc.resumed, State: Transferring})
	}
	return nil
}

// finished checks a completed file against the sender's hash and saves
// it under a name no file has: nothing is ever overwritten.
func (ep *Endpoint) finished(f *frame) error {
	inc, err := ep.incomingFor(f)
	if inc == nil {
		return err
	}
	if inc.written != inc.size {
		return protocolError("done after %d of %d bytes", inc.written, inc.size)
	}
	if !bytes.Equal(inc.hash.Sum(nil), f.Hash[:]) {
		ep.dropIncoming(inc, Failed, "the file arrived damaged (its hash differs): send it again", true)
		return nil
	}
	path, err := inc.part.Save(inc.name)
	ep.mu.Lock()
	delete(ep.in, inc.id)
	ep.mu.Unlock()
	if err != nil {
		inc.part.Remove()
		reason := "cannot save the file: " + err.Error()
		ep.emit(Event{ID: inc.id, Incoming: true, Name: inc.name, Size: inc.size, Done: inc.written, State: Failed, Reason: reason})
		ep.enqueue(frame{Kind: kindResult, ID: inc.id, Reason: reason})
		return nil
	}
	ep.log.Info("file transfer: file received", "name", filepath.Base(path), "size", inc.size)
	ep.emit(Event{ID: inc.id, Incoming: true, Name: filepath.Base(path), Size: inc.size, Done: inc.size,
		Resumed: inc.resumed, State: Completed, Path: path, SHA256: f.Hash})
	ep.enqueue(frame{Kind: kindResult, ID: inc.id, OK: true})
	return nil
}

// saveAs moves partial into dir under name, or "name (2)" and so on:
// each candidate is reserved by creating it exclusively (O_EXCL does not
// follow a symbolic link either), then the partial file replaces the
// empty file just created.
func saveAs(partial, dir, name string) (string, error) {
	for n := 1; n < 1000; n++ {
		p := filepath.Join(dir, numbered(name, n))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		f.Close()
		if err := os.Rename(partial, p); err != nil {
			os.Remove(p)
			return "", err
		}
		return p, nil
	}
	return "", errors.New("999 files of that name already exist")
}

// dropIncoming ends an incoming transfer: the partial file is deleted,
// and tell says whether the sender must hear of it.
func (ep *Endpoint) dropIncoming(inc *incoming, st State, reason string, tell bool) {
	ep.mu.Lock()
	if ep.in[inc.id] != inc {
		ep.mu.Unlock()
		return
	}
	delete(ep.in, inc.id)
	written := inc.written
	ep.mu.Unlock()
	inc.once.Do(func() {}) // an unanswered offer can no longer be accepted
	if inc.part != nil {
		inc.part.Remove()
	}
	ep.log.Info("file transfer: incoming file stopped", "name", inc.name, "state", st, "reason", reason)
	ep.emit(Event{ID: inc.id, Incoming: true, Name: inc.name, Size: inc.size, Done: written, State: st, Reason: reason})
	if tell {
		ep.enqueue(frame{Kind: kindCancel, ID: inc.id, Reason: reason})
	}
}

// interruptOne ends one incoming transfer as interrupted: its partial
// file stays for a resume.
func (ep *Endpoint) interruptOne(inc *incoming) {
	ep.mu.Lock()
	if ep.in[inc.id] != inc {
		ep.mu.Unlock()
		return
	}
	delete(ep.in, inc.id)
	written := inc.written
	ep.mu.Unlock()
	inc.once.Do(func() {})
	if inc.part != nil {
		inc.part.Close()
	}
	ep.emit(Event{ID: inc.id, Incoming: true, Name: inc.name, Size: inc.size, Done: written,
		State: Interrupted, Reason: "the connection was lost; what arrived is kept, and sending the file again resumes it"})
}

// interruptIncoming closes the files of incoming transfers when the
// channel goes: their partial files stay for a resume.
func (ep *Endpoint) interruptIncoming() {
	ep.mu.Lock()
	ins := ep.in
	ep.in = make(map[ID]*incoming)
	ep.mu.Unlock()
	for _, inc := range ins {
		inc.once.Do(func() {})
		if inc.part != nil {
			inc.part.Close()
		}
		ep.emit(Event{ID: inc.id, Incoming: true, Name: inc.name, Size: inc.size, Done: inc.written,
			State: Interrupted, Reason: "the connection was lost; what arrived is kept, and sending the file again resumes it"})
	}
}

// Size says n bytes in words: "512 bytes", "1.5 MB", "1.1 GB".
func Size(n uint64) string {
	switch {
	case n < 1000:
		return strconv.FormatUint(n, 10) + " bytes"
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}
