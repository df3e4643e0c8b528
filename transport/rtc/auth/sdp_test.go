package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const fpText = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

var fpBytes = bytes.Repeat([]byte{0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89}, 4)

func TestSDPFingerprint(t *testing.T) {
	other := strings.Replace(fpText, "AB", "AC", 1)
	tests := []struct {
		name, sdp string
		ok        bool
	}{
		{"session level", "v=0\r\na=fingerprint:sha-256 " + fpText + "\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", true},
		{"media level, lower case, LF", "v=0\nm=application 9\na=fingerprint:SHA-256 " + strings.ToLower(fpText) + "\n", true},
		{"repeated", "v=0\r\na=fingerprint:sha-256 " + fpText + "\r\nm=x\r\na=fingerprint:sha-256 " + fpText + "\r\n", true},
		{"other hashes ignored", "v=0\r\na=fingerprint:sha-1 AB:CD\r\na=fingerprint:sha-256 " + fpText + "\r\n", true},
		{"none", "v=0\r\nm=application 9\r\n", false},
		{"only sha-1", "v=0\r\na=fingerprint:sha-1 AB:CD:EF\r\n", false},
		{"two certificates", "v=0\r\na=fingerprint:sha-256 " + fpText + "\r\na=fingerprint:sha-256 " + other + "\r\n", false},
		{"short", "v=0\r\na=fingerprint:sha-256 AB:CD\r\n", false},
		{"not hex", "v=0\r\na=fingerprint:sha-256 " + strings.Replace(fpText, "AB", "XY", 1) + "\r\n", false},
		{"no colons", "v=0\r\na=fingerprint:sha-256 " + strings.ReplaceAll(fpText, ":", "-") + "\r\n", false},
		{"too large", "v=0\r\na=fingerprint:sha-256 " + fpText + "\r\n" + strings.Repeat("a=x\r\n", maxSDP/5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp, err := SDPFingerprint(tt.sdp)
			if !tt.ok {
				if !errors.Is(err, ErrNoFingerprint) {
					t.Errorf("got %x, %v; want ErrNoFingerprint", fp, err)
				}
				return
			}
			if err != nil || !bytes.Equal(fp, fpBytes) {
				t.Errorf("got %x, %v; want %x", fp, err, fpBytes)
			}
		})
	}
}

func FuzzSDPFingerprint(f *testing.F) {
	f.Add("v=0\r\na=fingerprint:sha-256 " + fpText + "\r\n")
	f.Add("a=fingerprint:sha-256 \n")
	f.Fuzz(func(t *testing.T, sdp string) {
		fp, err := SDPFingerprint(sdp)
		if err != nil {
			if !errors.Is(err, ErrNoFingerprint) {
				t.Fatalf("error does not wrap ErrNoFingerprint: %v", err)
			}
			return
		}
		if len(fp) != 32 {
			t.Fatalf("fingerprint of %d bytes", len(fp))
		}
	})
}
