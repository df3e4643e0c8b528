package rtc

import (
	"io"

	"github.com/assist-project/assist/pake"
	"github.com/assist-project/assist/transport/rtc/auth"
)

// The handshake inside the data channel lives in package auth, which has no
// pion in it, so the browser's expert (cmd/assist-wasm) runs the same code.

// bindingContext builds the PAKE Context from both ends' DTLS certificate
// fingerprints (SHA-256 of the DER certificate).
func bindingContext(expertFP, noviceFP []byte) []byte {
	return auth.BindingContext(expertFP, noviceFP)
}

// expertHandshake runs the expert's side of the handshake on the data
// channel's byte stream.
func expertHandshake(rw io.ReadWriter, cfg *Config, bind []byte) (*pake.Result, error) {
	return auth.Expert(rw, cfg.params(), bind)
}

// noviceHandshake runs the novice's side; it returns the expert's name too.
func noviceHandshake(rw io.ReadWriter, cfg *Config, bind []byte) (*pake.Result, string, error) {
	return auth.Novice(rw, cfg.params(), bind)
}

// params is what the handshake needs of cfg.
func (cfg *Config) params() auth.Params {
	return auth.Params{InvitationID: cfg.InvitationID, Password: cfg.Password, Name: cfg.Name, AttemptFailed: cfg.AttemptFailed}
}
