package rendezvous

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestTURNPin(t *testing.T) {
	sum := sha256.Sum256([]byte("certificate"))
	hexSum := hex.EncodeToString(sum[:])
	for _, tt := range []struct {
		fingerprint string
		want        []byte
	}{
		{"sha256:" + hexSum, sum[:]},
		{"SHA256:" + hexSum, sum[:]},
		{"", nil},
		{hexSum, nil},                  // no algorithm
		{"sha1:" + hexSum[:40], nil},   // another algorithm
		{"sha256:" + hexSum[:62], nil}, // short
		{"sha256:zz" + hexSum[2:], nil},
	} {
		if got := turnPin(tt.fingerprint); !bytes.Equal(got, tt.want) {
			t.Errorf("turnPin(%q) = %x, want %x", tt.fingerprint, got, tt.want)
		}
	}
}
