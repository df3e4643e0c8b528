package recording

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"filippo.io/age"
)

// plain is the plaintext of a recording whose frames carry stream.
func plain(stream ...[]byte) []byte {
	b := []byte(Magic + `{"started":"2026-12-06T10:00:00Z"}` + "\n")
	for i, s := range stream {
		b = binary.BigEndian.AppendUint32(b, uint32(i*10))
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// serverStream is what our server says to a recorder: version 3.8, the
// None security type, ServerInit of w x h.
func serverStream(w, h uint16) []byte {
	b := []byte("RFB 003.008\n\x01\x01\x00\x00\x00\x00")
	b = binary.BigEndian.AppendUint16(b, w)
	b = binary.BigEndian.AppendUint16(b, h)
	b = append(b, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0)
	return append(b, 0, 0, 0, 1, 'x')
}

// streamOf joins the frames of a plaintext recording, as far as they are
// well formed.
func streamOf(b []byte) []byte {
	i := bytes.IndexByte(b, '\n')
	if i < 0 || !bytes.HasPrefix(b, []byte(Magic)) {
		return nil
	}
	b = b[len(Magic):]
	if i = bytes.IndexByte(b, '\n'); i < 0 {
		return nil
	}
	b = b[i+1:]
	var out []byte
	for len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if n > len(b)-8 {
			n = len(b) - 8
		}
		out = append(out, b[8:8+n]...)
		b = b[8+n:]
	}
	return out
}

// FuzzOpenPlain: a recording comes from the novice's machine, which may
// be hostile; whatever its plaintext, playback fails cleanly.
func FuzzOpenPlain(f *testing.F) {
	raw := append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0}, bytes.Repeat([]byte{1, 2, 3, 4}, 2)...)
	f.Add(plain(serverStream(2, 1), raw))
	f.Add(plain(serverStream(2, 1)))
	f.Add(plain([]byte("RFB 003.003\n\x00\x00\x00\x01\x00\x01\x00\x01")))
	f.Add([]byte(Magic + "{}\n\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The decoder may allocate a framebuffer as large as the server
		// claims (rfb's client allows 8192x8192): keep the fuzzer's
		// memory small by skipping claims above 1 megapixel, at either
		// handshake's offset.
		s := streamOf(b)
		for _, at := range []int{14, 16, 18} {
			if len(s) >= at+4 && int(binary.BigEndian.Uint16(s[at:]))*int(binary.BigEndian.Uint16(s[at+2:])) > 1<<20 {
				return
			}
		}
		p, err := openPlain(bytes.NewReader(b))
		if err != nil {
			return
		}
		p.Skip(1000 * time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Run(ctx); err == context.DeadlineExceeded {
			t.Fatal("playback hung")
		}
	})
}

// TestOpenNotARecording: an age file of something else is refused.
func TestOpenNotARecording(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	var b bytes.Buffer
	w, _ := age.Encrypt(&b, id.Recipient())
	w.Write([]byte("hello"))
	w.Close()
	if _, err := Open(&b, id); err == nil {
		t.Fatal("opened something that is not a recording")
	}
}

// TestPlainSeed: the fuzz seed is a good recording, so the fuzzer starts
// from playback that works.
func TestPlainSeed(t *testing.T) {
	raw := append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0}, 1, 2, 3, 4, 5, 6, 7, 8)
	p, err := openPlain(bytes.NewReader(plain(serverStream(2, 1), raw)))
	if err != nil {
		t.Fatal(err)
	}
	p.Skip(time.Hour)
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.canvas.img.Pix; !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("played %v", got)
	}
}

// TestPlainLength: the length is the last frame's time; damage is an
// error.
func TestPlainLength(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want time.Duration
		ok   bool
	}{
		{"three frames", plain([]byte("a"), []byte("b"), []byte("c")), 20 * time.Millisecond, true},
		{"no frames", plain(), 0, true},
		{"not a recording", []byte("hello"), 0, false},
		{"cut frame", plain([]byte("abc"))[:len(plain([]byte("abc")))-1], 0, false},
		{"huge frame", []byte(Magic + "{}\n\x00\x00\x00\x00\xff\xff\xff\xff"), 0, false},
	} {
		got, err := plainLength(bytes.NewReader(tc.b))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %v, %v; want %v (ok %t)", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzPlainLength(f *testing.F) {
	f.Add(plain([]byte("a"), []byte("b")))
	f.Add([]byte(Magic + "{}\n\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = plainLength(bytes.NewReader(b))
	})
}
