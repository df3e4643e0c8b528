package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// maxSDP bounds what SDPFingerprint reads, as package rtc bounds the SDP it
// accepts from signalling.
const maxSDP = 64 << 10

// ErrNoFingerprint is what SDPFingerprint returns (wrapped) for a
// description without a usable SHA-256 certificate fingerprint.
var ErrNoFingerprint = errors.New("no sha-256 certificate fingerprint in the session description")

// SDPFingerprint returns the SHA-256 certificate fingerprint that a
// session description announces (RFC 8122: "a=fingerprint:sha-256
// AB:CD:..."), 32 bytes.
//
// A browser cannot hand out the certificates of its DTLS connection, but it
// refuses a DTLS peer whose certificate does not match the remote
// description's fingerprint, and its own description names the certificate
// it presents. So in a browser the two descriptions' fingerprints are the
// certificates DTLS used, which is what BindingContext needs.
//
// Every sha-256 fingerprint in the description must be the same (browsers
// repeat it in each media section); fingerprints with other hash
// functions are ignored.
func SDPFingerprint(sdp string) ([]byte, error) {
	if len(sdp) > maxSDP {
		return nil, fmt.Errorf("%w: the description is %d bytes, max %d", ErrNoFingerprint, len(sdp), maxSDP)
	}
	var fp []byte
	for line := range strings.SplitSeq(sdp, "\n") {
		line = strings.TrimSuffix(line, "\r")
		v, ok := strings.CutPrefix(line, "a=fingerprint:")
		if !ok {
			continue
		}
		hash, value, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(hash, "sha-256") {
			continue
		}
		b, err := parseFingerprint(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoFingerprint, err)
		}
		if fp != nil && !bytes.Equal(fp, b) {
			return nil, fmt.Errorf("%w: the description names two different certificates", ErrNoFingerprint)
		}
		fp = b
	}
	if fp == nil {
		return nil, ErrNoFingerprint
	}
	return fp, nil
}

// parseFingerprint reads 32 colon-separated hex bytes, either case.
func parseFingerprint(s string) ([]byte, error) {
	const n = 32
	if len(s) != 3*n-1 {
		return nil, fmt.Errorf("fingerprint is %d characters, want %d", len(s), 3*n-1)
	}
	b := make([]byte, n)
	for i := range n {
		if i > 0 && s[3*i-1] != ':' {
			return nil, errors.New("fingerprint bytes are not separated by colons")
		}
		hi, ok1 := unhex(s[3*i])
		lo, ok2 := unhex(s[3*i+1])
		if !ok1 || !ok2 {
			return nil, errors.New("fingerprint is not hexadecimal")
		}
		b[i] = hi<<4 | lo
	}
	return b, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
