package session

import (
	"context"
	"errors"
	"sync"

	"github.com/assist-project/assist/filetransfer"
)

// eventQueue hands file transfer events to the application in order
// without ever blocking the transfer: progress of one transfer replaces
// its previous, unread progress, so the queue holds little more than one
// entry per transfer and state change.
type eventQueue struct {
	mu    sync.Mutex
	queue []filetransfer.Event
	wake  chan struct{}
	out   chan filetransfer.Event
}

func newEventQueue() *eventQueue {
	return &eventQueue{wake: make(chan struct{}, 1), out: make(chan filetransfer.Event)}
}

func (q *eventQueue) push(ev filetransfer.Event) {
	q.mu.Lock()
	if n := len(q.queue); ev.State == filetransfer.Transferring && n > 0 {
		if last := &q.queue[n-1]; last.ID == ev.ID && last.State == filetransfer.Transferring {
			*last = ev
			q.mu.Unlock()
			return
		}
	}
	q.queue = append(q.queue, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run delivers events until done is closed, then closes out.
func (q *eventQueue) run(done <-chan struct{}) {
	defer close(q.out)
	for {
		q.mu.Lock()
		batch := q.queue
		q.queue = nil
		q.mu.Unlock()
		for _, ev := range batch {
			select {
			case q.out <- ev:
			case <-done:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.wake:
		case <-done:
			return
		}
	}
}

// ErrNoFiles is wrapped by the error for a file sent or received
// without the files right.
var ErrNoFiles = errors.New("file transfers are not allowed")

// startFiles starts the novice's end of the file channel: every offer,
// in either direction, and every piece of an incoming file needs the
// files right at that moment (fail closed: a revoked right stops what is
// under way).
func (n *Novice) startFiles(dir string, audit func(filetransfer.Event)) {
	n.fileEvents = newEventQueue()
	n.files = filetransfer.New(n.mux.Channel(ChannelFiles), filetransfer.Config{
		Dir: dir,
		Allowed: func() error {
			if n.consent.State() == Ended {
				return filetransfer.ErrSessionOver
			}
			if !n.consent.Rights().Has(RightFiles) {
				return errors.New("file transfers are not allowed: ask for them first")
			}
			return nil
		},
		OnEvent: auditFiles(audit, n.fileEvents.push),
		Logger:  n.log,
	})
}

// auditFiles passes every event to push, and the end of each transfer
// to audit too (if set), synchronously, so the trail has every file.
func auditFiles(audit, push func(filetransfer.Event)) func(filetransfer.Event) {
	if audit == nil {
		return push
	}
	return func(ev filetransfer.Event) {
		switch ev.State {
		case filetransfer.Completed, filetransfer.Refused, filetransfer.Cancelled,
			filetransfer.Failed, filetransfer.Interrupted:
			audit(ev)
		}
		push(ev)
	}
}

// SendFile offers the file at path to the expert; it needs the files
// right. Progress comes on FileEvents.
func (n *Novice) SendFile(path string) (filetransfer.ID, error) {
	if err := n.needs(FeatureFiles, noFilesWords); err != nil {
		return filetransfer.ID{}, err
	}
	if !n.consent.Rights().Has(RightFiles) {
		return filetransfer.ID{}, ErrNoFiles
	}
	return n.files.Send(context.Background(), path)
}

// CancelFile stops a transfer in either direction.
func (n *Novice) CancelFile(id filetransfer.ID) bool {
	return n.files.Cancel(id, "the other side cancelled")
}

// FileEvents delivers the file transfers' changes and progress; it is
// closed when the session is over.
func (n *Novice) FileEvents() <-chan filetransfer.Event { return n.fileEvents.out }

// SetFiles allows file transfers or stops them (the novice's toggle);
// see Consent.SetFiles. An expert whose program did not announce
// FeatureFiles cannot be allowed them (ErrNotSupported): it would not
// understand the right.
func (n *Novice) SetFiles(allow bool) error {
	if allow {
		if err := n.needs(FeatureFiles, noFilesWords); err != nil {
			return err
		}
	}
	return n.consent.SetFiles(allow)
}

// Files reports whether the novice allows file transfers.
func (n *Novice) Files() bool { return n.consent.Files() }

// FilesAsked reports whether a files question waits for an answer.
func (n *Novice) FilesAsked() bool { return n.consent.FilesAsked() }

// ExpertConfig sets up the expert's end of a session.
type ExpertConfig struct {
	// FilesDir is where files from the novice are saved once the expert
	// accepts them (FileOffers); "" refuses them all, unless FilesStore
	// is set.
	FilesDir string
	// FilesStore, if set, keeps the novice's files instead of FilesDir
	// (the browser's expert has no disk).
	FilesStore filetransfer.Store
	// Audit, if set, receives every state the novice reports and the
	// end (never chat), synchronously and in order: the expert's audit
	// trail. It must not call the Expert back.
	Audit func(ExpertEvent)
	// FileAudit, if set, receives the end of every file transfer
	// (completed with its SHA-256, refused, cancelled, failed or
	// interrupted), synchronously.
	FileAudit func(filetransfer.Event)
}

func (e *Expert) startFiles(cfg ExpertConfig) {
	e.fileEvents = newEventQueue()
	e.offers = make(chan filetransfer.Offer, filetransfer.MaxIncoming)
	e.files = filetransfer.New(e.mux.Channel(ChannelFiles), filetransfer.Config{
		Dir:   cfg.FilesDir,
		Store: cfg.FilesStore,
		Allowed: func() error {
			if !e.Rights().Has(RightFiles) {
				return errors.New("file transfers are not allowed yet: ask for them first")
			}
			return nil
		},
		Ask: func(o filetransfer.Offer) {
			select {
			case e.offers <- o:
			default:
				o.Refuse("too many files wait for an answer")
			}
		},
		OnEvent: auditFiles(cfg.FileAudit, e.fileEvents.push),
		Logger:  e.log,
	})
}

// Rights are the expert's rights as the novice last reported them.
func (e *Expert) Rights() Rights {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rights
}

// ErrNotSupported is wrapped by the error for something the peer's
// program did not announce (see Announce): nothing was sent.
var ErrNotSupported = errors.New("not supported by the other computer's Assist")

// noFilesWords is why files cannot move with a peer without FeatureFiles.
const noFilesWords = "the other computer's Assist cannot exchange files: ask them to update Assist"

// RequestFiles asks the novice to allow file transfers both ways.
func (e *Expert) RequestFiles(ctx context.Context) error {
	if st, _ := e.State(); st == Ended {
		return errors.New("session: the session has ended")
	}
	if err := e.needs(ctx, FeatureFiles, noFilesWords); err != nil {
		return err
	}
	return e.control(Request{Right: RightFiles})
}

// SendFile offers the file at path to the novice; it needs the files
// right. Progress comes on FileEvents.
func (e *Expert) SendFile(ctx context.Context, path string) (filetransfer.ID, error) {
	if err := e.needs(ctx, FeatureFiles, noFilesWords); err != nil {
		return filetransfer.ID{}, err
	}
	return e.files.Send(ctx, path)
}

// SendSource offers src (a file that is no path, such as a browser's
// File) to the novice, as SendFile does.
func (e *Expert) SendSource(ctx context.Context, src filetransfer.Source) (filetransfer.ID, error) {
	if err := e.needs(ctx, FeatureFiles, noFilesWords); err != nil {
		return filetransfer.ID{}, err
	}
	return e.files.SendSource(ctx, src)
}

// CancelFile stops a transfer in either direction.
func (e *Expert) CancelFile(id filetransfer.ID) bool {
	return e.files.Cancel(id, "the expert cancelled")
}

// FileOffers delivers the files the novice wants to send: each must be
// accepted or refused.
func (e *Expert) FileOffers() <-chan filetransfer.Offer { return e.offers }

// FileEvents delivers the file transfers' changes and progress; it is
// closed when the session is over.
func (e *Expert) FileEvents() <-chan filetransfer.Event { return e.fileEvents.out }
