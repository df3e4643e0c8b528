package pake

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		kind    byte
		payload []byte
	}{
		{0, nil},
		{1, []byte{0x42}},
		{'S', bytes.Repeat([]byte{7}, MessageSize)},
		{0xff, bytes.Repeat([]byte{1}, MaxFramePayload)},
	}
	var stream bytes.Buffer
	for _, tc := range tests {
		if err := WriteMessage(&stream, tc.kind, tc.payload); err != nil {
			t.Fatalf("WriteMessage(%d, %d bytes): %v", tc.kind, len(tc.payload), err)
		}
	}
	for _, tc := range tests {
		kind, payload, err := ReadMessage(&stream, MaxFramePayload)
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		if kind != tc.kind || !bytes.Equal(payload, tc.payload) {
			t.Errorf("ReadMessage = %d, %d bytes; want %d, %d bytes", kind, len(payload), tc.kind, len(tc.payload))
		}
	}
	if _, _, err := ReadMessage(&stream, 10); !errors.Is(err, io.EOF) {
		t.Errorf("ReadMessage at end = %v, want io.EOF", err)
	}
}

func TestFrameWireFormat(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMessage(&b, 'C', []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if want := []byte{'C', 0, 3, 'a', 'b', 'c'}; !bytes.Equal(b.Bytes(), want) {
		t.Errorf("frame = %x, want %x", b.Bytes(), want)
	}
}

func TestReadMessageErrors(t *testing.T) {
	tests := []struct {
		name   string
		input  []byte
		maxLen int
		want   error
	}{
		{"empty stream", nil, 10, io.EOF},
		{"partial header", []byte{1, 0}, 10, io.ErrUnexpectedEOF},
		{"truncated payload", []byte{1, 0, 5, 'a', 'b'}, 10, io.ErrUnexpectedEOF},
		{"missing payload", []byte{1, 0, 5}, 10, io.ErrUnexpectedEOF},
		{"over the bound", []byte{1, 0, 33}, 32, ErrFrameTooLarge},
		{"over a zero bound", []byte{1, 0, 1, 0}, 0, ErrFrameTooLarge},
		{"negative bound is zero", []byte{1, 0, 1, 0}, -5, ErrFrameTooLarge},
		// A huge claimed length is refused before any allocation or read.
		{"huge length", []byte{1, 0xff, 0xff}, 1024, ErrFrameTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, p, err := ReadMessage(bytes.NewReader(tc.input), tc.maxLen)
			if !errors.Is(err, tc.want) || p != nil {
				t.Errorf("ReadMessage = %d bytes, %v; want %v", len(p), err, tc.want)
			}
		})
	}
}

func TestReadMessageExactBound(t *testing.T) {
	kind, p, err := ReadMessage(bytes.NewReader([]byte{9, 0, 2, 'h', 'i'}), 2)
	if err != nil || kind != 9 || string(p) != "hi" {
		t.Errorf("ReadMessage = %d, %q, %v", kind, p, err)
	}
	// A bound above what the length field can express is clamped, not an
	// error.
	if _, _, err := ReadMessage(bytes.NewReader([]byte{9, 0, 0}), 1<<30); err != nil {
		t.Errorf("ReadMessage with a large bound: %v", err)
	}
}

type countingWriter struct {
	writes int
	err    error
	bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	return w.Buffer.Write(p)
}

func TestWriteMessageErrors(t *testing.T) {
	var w countingWriter
	if err := WriteMessage(&w, 1, make([]byte, MaxFramePayload+1)); !errors.Is(err, ErrFrameTooLarge) || w.writes != 0 {
		t.Errorf("oversized WriteMessage = %v after %d writes, want ErrFrameTooLarge and no write", err, w.writes)
	}
	if err := WriteMessage(&w, 1, make([]byte, 100)); err != nil || w.writes != 1 {
		t.Errorf("WriteMessage = %v in %d writes, want one write", err, w.writes)
	}
	boom := errors.New("boom")
	w.err = boom
	if err := WriteMessage(&w, 1, []byte{1}); !errors.Is(err, boom) {
		t.Errorf("WriteMessage on a failing writer = %v, want it wrapped", err)
	}
}

// TestFramedExchange runs a whole exchange over net.Pipe-like in-memory
// streams, the way the session layer will.
func TestFramedExchange(t *testing.T) {
	const kindShare, kindConfirm = 'S', 'C'
	aToB, bToA := new(bytes.Buffer), new(bytes.Buffer)
	a := mustNew(t, cfg(Initiator, "pw", "x"))
	b := mustNew(t, cfg(Responder, "pw", "x"))
	if err := WriteMessage(aToB, kindShare, a.Message()); err != nil {
		t.Fatal(err)
	}
	if err := WriteMessage(bToA, kindShare, b.Message()); err != nil {
		t.Fatal(err)
	}
	finish := func(ex *Exchange, in io.Reader) *Result {
		kind, share, err := ReadMessage(in, MessageSize)
		if err != nil || kind != kindShare {
			t.Fatalf("read share: %c %v", kind, err)
		}
		r, err := ex.Finish(share)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra, rb := finish(a, bToA), finish(b, aToB)
	WriteMessage(aToB, kindConfirm, ra.Confirmation())
	WriteMessage(bToA, kindConfirm, rb.Confirmation())
	verify := func(r *Result, in io.Reader) {
		kind, tag, err := ReadMessage(in, ConfirmationSize)
		if err != nil || kind != kindConfirm {
			t.Fatalf("read confirmation: %c %v", kind, err)
		}
		if err := r.Verify(tag); err != nil {
			t.Fatal(err)
		}
	}
	verify(ra, bToA)
	verify(rb, aToB)
	if !bytes.Equal(ra.SessionKey("chat", 32), rb.SessionKey("chat", 32)) {
		t.Error("session keys differ")
	}
}
