package rfb

import (
	"bufio"
	"bytes"
	"errors"
	"image"
	"io"
	"reflect"
	"testing"
)

func TestReadClientMessage(t *testing.T) {
	pf16 := make([]byte, 16)
	PixelFormat{BPP: 16, Depth: 16, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5}.marshal(pf16)
	tests := []struct {
		name string
		in   []byte
		want clientMessage
	}{
		{"SetPixelFormat", append([]byte{0, 0, 0, 0}, pf16...), clientMessage{typ: 0, pf: PixelFormat{BPP: 16, Depth: 16, TrueColor: true, RedMax: 31, GreenMax: 63, BlueMax: 31, RedShift: 11, GreenShift: 5}}},
		{"SetEncodings", []byte{2, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x11}, clientMessage{typ: 2, encodings: []int32{7, 1, -239}}},
		{"SetEncodings empty", []byte{2, 0, 0, 0}, clientMessage{typ: 2, encodings: []int32{}}},
		{"FramebufferUpdateRequest", []byte{3, 1, 0, 10, 0, 20, 0, 30, 0, 40}, clientMessage{typ: 3, incremental: true, area: image.Rect(10, 20, 40, 60)}},
		{"KeyEvent", []byte{4, 1, 0, 0, 0, 0, 0xff, 0x1b}, clientMessage{typ: 4, down: true, keysym: 0xff1b}},
		{"PointerEvent", []byte{5, 0x09, 0x01, 0x00, 0x00, 0x80}, clientMessage{typ: 5, buttons: 9, x: 256, y: 128}},
		{"ClientCutText", []byte{6, 0, 0, 0, 0, 0, 0, 3, 'a', 0xe9, 'b'}, clientMessage{typ: 6, text: "aéb"}},
		{"EnableContinuousUpdates", []byte{150, 1, 0, 0, 0, 0, 0x05, 0, 0x03, 0x20}, clientMessage{typ: 150, enable: true, area: image.Rect(0, 0, 1280, 800)}},
		{"ClientFence", []byte{248, 0, 0, 0, 0x80, 0, 0, 3, 2, 'h', 'i'}, clientMessage{typ: 248, fenceFlags: 0x80000003, fenceData: []byte("hi")}},
		{"SetDesktopSize", append([]byte{251, 0, 0x04, 0, 0x03, 0, 1, 0}, make([]byte, 16)...), clientMessage{typ: 251, size: image.Pt(1024, 768)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readClientMessage(bufio.NewReader(bytes.NewReader(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadClientMessageRejects(t *testing.T) {
	badPF := make([]byte, 16)
	PixelFormat{BPP: 24, Depth: 24, TrueColor: true, RedMax: 255, GreenMax: 255, BlueMax: 255}.marshal(badPF)
	colourMap := make([]byte, 16)
	PixelFormat{BPP: 8, Depth: 8}.marshal(colourMap)
	tests := []struct {
		name     string
		in       []byte
		protocol bool // a protocol violation, rather than a short read
	}{
		{"unknown type", []byte{77}, true},
		{"24 bpp", append([]byte{0, 0, 0, 0}, badPF...), true},
		{"colour map", append([]byte{0, 0, 0, 0}, colourMap...), true},
		{"huge cut text", []byte{6, 0, 0, 0, 0x10, 0, 0, 0}, true},
		{"extended clipboard too long", []byte{6, 0, 0, 0, 0x80, 0, 0, 0}, true},
		{"extended clipboard without flags", []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0}, true},
		{"extended clipboard two actions", []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x0a, 0, 0, 1}, true},
		{"extended clipboard caps short", []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x01, 0, 0, 1}, true},
		{"extended clipboard notify with payload", []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfb, 0x08, 0, 0, 1, 'x'}, true},
		{"truncated extended clipboard", []byte{6, 0, 0, 0, 0xff, 0xff, 0xff, 0xf0, 0x10}, false},
		{"fence payload too long", []byte{248, 0, 0, 0, 0, 0, 0, 0, 65}, true},
		{"too many screens", []byte{251, 0, 0, 1, 0, 1, 200, 0}, true},
		{"truncated key event", []byte{4, 1, 0}, false},
		{"truncated encodings", []byte{2, 0, 0, 5, 0, 0, 0, 1}, false},
		{"truncated cut text", []byte{6, 0, 0, 0, 0, 0, 0, 9, 'a'}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readClientMessage(bufio.NewReader(bytes.NewReader(tt.in)))
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, errProtocol); got != tt.protocol {
				t.Errorf("errors.Is(%v, errProtocol) = %v, want %v", err, got, tt.protocol)
			}
			if !tt.protocol && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("short read gave %v, want an EOF", err)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in    string
		minor int
		ok    bool
	}{
		{"RFB 003.008\n", 8, true},
		{"RFB 003.007\n", 7, true},
		{"RFB 003.003\n", 3, true},
		{"RFB 003.005\n", 3, true},
		{"RFB 003.889\n", 8, true},
		{"RFB 004.000\n", 0, false},
		{"GET / HTTP/1", 0, false},
		{"RFB 003.0x8\n", 0, false},
	}
	for _, tt := range tests {
		minor, err := parseVersion([]byte(tt.in))
		if (err == nil) != tt.ok || minor != tt.minor {
			t.Errorf("parseVersion(%q) = %d, %v; want %d, ok=%v", tt.in, minor, err, tt.minor, tt.ok)
		}
	}
}

func TestLatin1(t *testing.T) {
	if got := latin1ToString([]byte{'h', 0xe9, 0xff}); got != "hé\u00ff" {
		t.Errorf("latin1ToString = %q", got)
	}
	if got := stringToLatin1("hé€"); !bytes.Equal(got, []byte{'h', 0xe9, '?'}) {
		t.Errorf("stringToLatin1 = %q", got)
	}
}

func FuzzReadClientMessage(f *testing.F) {
	f.Add([]byte{2, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 16})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0x05, 0, 0x03, 0x20})
	f.Add([]byte{6, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Add([]byte{248, 0, 0, 0, 0x80, 0, 0, 0, 0})
	f.Add([]byte{251, 0, 0, 1, 0, 1, 1, 0})
	f.Add(appendClipCaps(nil, msgClientCutText, 0))
	f.Add(appendClipAction(nil, msgClientCutText, clipNotify, clipText))
	provide, _ := appendClipProvide(nil, msgClientCutText, "Grüße ✓ 你好\n")
	f.Add(provide)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for {
			m, err := readClientMessage(r)
			if err != nil {
				return
			}
			if m.typ == msgSetPixelFormat && m.pf.Validate() != nil {
				t.Fatalf("accepted invalid pixel format %+v", m.pf)
			}
			if len(m.text) > 2*maxCutText || len(m.fenceData) > maxFenceData {
				t.Fatalf("oversized message accepted")
			}
			if m.ext != nil {
				if text, _, err := m.ext.providedText(maxClipText); err == nil && len(text) > 3*maxClipText {
					t.Fatalf("provided text of %d bytes accepted", len(text))
				}
			}
		}
	})
}
