//go:build js && wasm

package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall/js"

	"github.com/assist-project/assist/filetransfer"
)

// Files in the browser. The page has no disk: a file from the novice
// arrives as chunks handed to JavaScript as they come (Go's memory does
// not hold it), becomes a Blob once complete and checked, and the page
// offers it as a download link; a file sent is read from the page's File
// a window at a time.

// maxHeld bounds what the browser holds of incoming files at once: the
// transfer's free-space check refuses a file beyond it.
const maxHeld = 1 << 30

// blobStore is a filetransfer.Store in the page's memory. It lives as
// long as the page, so a transfer interrupted by a lost session resumes
// when the same file is offered in the next one.
type blobStore struct {
	mu    sync.Mutex
	parts map[filetransfer.ID]*blobPart
	urls  map[filetransfer.ID]string // object URLs of saved files
}

var store = &blobStore{parts: make(map[filetransfer.ID]*blobPart), urls: make(map[filetransfer.ID]string)}

func (s *blobStore) Has(id filetransfer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[id] != nil
}

func (s *blobStore) Open(id filetransfer.ID) (filetransfer.Part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[id]
	if p == nil {
		p = &blobPart{s: s, id: id, chunks: js.Global().Get("Array").New()}
		s.parts[id] = p
	}
	p.read = 0
	return p, nil
}

func (s *blobStore) FreeSpace() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var held uint64
	for _, p := range s.parts {
		held += p.size
	}
	return maxHeld - min(held, maxHeld), nil
}

// url is where the page finds saved file id, or "".
func (s *blobStore) url(id filetransfer.ID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urls[id]
}

// blobPart is an incoming file: its chunks (Uint8Arrays) in order.
type blobPart struct {
	s      *blobStore
	id     filetransfer.ID
	chunks js.Value
	size   uint64
	read   int // chunks read back by Read
	rbuf   []byte
}

// Read reads the part back (the transfer hashes what is held before a
// resume).
func (p *blobPart) Read(b []byte) (int, error) {
	for len(p.rbuf) == 0 {
		if p.read >= p.chunks.Length() {
			return 0, io.EOF
		}
		c := p.chunks.Index(p.read)
		p.read++
		p.rbuf = make([]byte, c.Length())
		js.CopyBytesToGo(p.rbuf, c)
	}
	n := copy(b, p.rbuf)
	p.rbuf = p.rbuf[n:]
	return n, nil
}

// WriteAt appends: the transfer writes in order from where the part ends.
func (p *blobPart) WriteAt(b []byte, off int64) (int, error) {
	if uint64(off) != p.size {
		return 0, fmt.Errorf("write at %d of a part of %d bytes", off, p.size)
	}
	c := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(c, b)
	p.chunks.Call("push", c)
	p.s.mu.Lock()
	p.size += uint64(len(b))
	p.s.mu.Unlock()
	return len(b), nil
}

func (p *blobPart) Truncate(n int64) error {
	if n != 0 {
		return errors.New("a part in the browser can only start over")
	}
	p.chunks = js.Global().Get("Array").New()
	p.s.mu.Lock()
	p.size = 0
	p.s.mu.Unlock()
	return nil
}

// Save makes the part a Blob and an object URL for the page's link.
func (p *blobPart) Save(name string) (string, error) {
	opts := js.Global().Get("Object").New()
	opts.Set("type", "application/octet-stream")
	blob := js.Global().Get("Blob").New(p.chunks, opts)
	url := js.Global().Get("URL").Call("createObjectURL", blob).String()
	p.s.mu.Lock()
	delete(p.s.parts, p.id)
	p.s.urls[p.id] = url
	p.s.mu.Unlock()
	return name, nil
}

func (p *blobPart) Remove() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	delete(p.s.parts, p.id)
	return nil
}

func (p *blobPart) Close() error { return nil }

// fileReader reads a page's File (a Blob) at any offset, a window at a
// time: each read of the File is a Promise, too slow per 16 KiB chunk.
type fileReader struct {
	file js.Value
	size int64
	mu   sync.Mutex
	off  int64
	buf  []byte
}

const readWindow = 1 << 20

func (r *fileReader) ReadAt(b []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		if pos < r.off || pos >= r.off+int64(len(r.buf)) {
			end := min(pos+readWindow, r.size)
			ab, err := await(r.file.Call("slice", pos, end).Call("arrayBuffer"))
			if err != nil {
				return n, fmt.Errorf("read the file: %w", err)
			}
			r.buf = make([]byte, end-pos)
			if got := js.CopyBytesToGo(r.buf, js.Global().Get("Uint8Array").New(ab)); got != len(r.buf) {
				return n, errors.New("read the file: short read")
			}
			r.off = pos
		}
		n += copy(b[n:], r.buf[pos-r.off:])
	}
	return n, nil
}

// await waits for a Promise; only from a goroutine of our own, never a
// JavaScript callback.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	done := make(chan result, 1)
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{v: args[0]}
		return nil
	})
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		done <- result{err: errors.New(args[0].Call("toString").String())}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	r := <-done
	return r.v, r.err
}

// fileObject is a transfer as the page's files panel shows it
// (web/session/files.js), with the saved file's url.
func fileObject(ev filetransfer.Event, asking bool) map[string]any {
	o := map[string]any{"id": hex.EncodeToString(ev.ID[:]), "name": ev.Name, "size": float64(ev.Size),
		"done": float64(ev.Done), "state": string(ev.State), "incoming": ev.Incoming, "asking": asking,
		"reason": ev.Reason}
	if ev.Incoming && ev.State == filetransfer.Completed {
		o["path"] = ev.Path
		o["url"] = store.url(ev.ID)
	}
	return map[string]any{"type": "file", "file": o}
}

// files is a session's file transfers as the page drives them.
type files struct {
	mu     sync.Mutex
	offers map[string]filetransfer.Offer // by hex ID, waiting for an answer
}

// run forwards the session's file events and offers to the page until
// the session is over.
func (s *expertSession) runFiles(onEvent js.Value) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for ev := range s.exp.FileEvents() {
			if ev.Incoming && ev.State == filetransfer.Offered {
				continue // the offer says it, with the question
			}
			onEvent.Invoke(fileObject(ev, false))
		}
	})
	for {
		select {
		case o := <-s.exp.FileOffers():
			id := hex.EncodeToString(o.ID[:])
			s.files.mu.Lock()
			s.files.offers[id] = o
			s.files.mu.Unlock()
			onEvent.Invoke(fileObject(filetransfer.Event{ID: o.ID, Name: o.Name, Size: o.Size,
				State: filetransfer.Offered, Incoming: true}, true))
		case <-s.exp.Done():
			return
		}
	}
}

// fileMethods adds the files panel's calls to the session object.
func (s *expertSession) fileMethods(o js.Value) {
	s.method(o, "requestFiles", func([]js.Value) any {
		return promise(func() (any, error) {
			return nil, s.exp.RequestFiles(context.Background())
		})
	})
	s.method(o, "sendFile", func(args []js.Value) any {
		var f js.Value
		if len(args) > 0 {
			f = args[0]
		}
		return promise(func() (any, error) {
			if f.Type() != js.TypeObject || f.Get("name").Type() != js.TypeString || f.Get("size").Type() != js.TypeNumber {
				return nil, errors.New("sendFile needs a File")
			}
			size := int64(f.Get("size").Float())
			key := ""
			if lm := f.Get("lastModified"); lm.Type() == js.TypeNumber {
				key = fmt.Sprint(int64(lm.Float()))
			}
			id, err := s.exp.SendSource(context.Background(), filetransfer.Source{Name: f.Get("name").String(),
				Size: uint64(size), Key: key, Data: &fileReader{file: f, size: size}})
			if err != nil {
				return nil, err
			}
			return hex.EncodeToString(id[:]), nil
		})
	})
	s.method(o, "answerFile", func(args []js.Value) any {
		id, accept := "", false
		if len(args) > 1 && args[0].Type() == js.TypeString && args[1].Type() == js.TypeBoolean {
			id, accept = args[0].String(), args[1].Bool()
		}
		s.files.mu.Lock()
		offer, ok := s.files.offers[id]
		delete(s.files.offers, id)
		s.files.mu.Unlock()
		if !ok {
			return false
		}
		if accept {
			offer.Accept()
		} else {
			offer.Refuse("the expert refused it")
		}
		return true
	})
	s.method(o, "cancelFile", func(args []js.Value) any {
		var id filetransfer.ID
		if len(args) == 0 || args[0].Type() != js.TypeString {
			return false
		}
		b, err := hex.DecodeString(args[0].String())
		if err != nil || len(b) != len(id) {
			return false
		}
		copy(id[:], b)
		return s.exp.CancelFile(id)
	})
}
