package relay

import (
	"crypto/ed25519"
	"testing"

	"github.com/assist-project/assist/invitation"
)

// FuzzParse: a request body from anyone either fails to parse or gives a
// key, signature and file of the right sizes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","time":1,"to":"a@b.c","invitation":"e30","sig":"AAAA"}`,
		`{}`, `[]`, `{"key":1}`, `{"x":1}`, `{"to":"` + string(make([]byte, 300)) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, key, sig, file, err := parse(body)
		if err != nil {
			return
		}
		if len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || len(file) == 0 || len(file) > invitation.MaxFileSize {
			t.Fatalf("parse accepted key %d, sig %d, file %d bytes", len(key), len(sig), len(file))
		}
	})
}
