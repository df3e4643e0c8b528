// Package dialhint turns a failed connection to an assist server into an
// error that says what to do next. A newcomer who sees "connection
// refused" or "x509: certificate signed by unknown authority" learns what
// went wrong but not what to run; these are the two mistakes everyone
// makes first (the server is not started, or its self-signed certificate
// is not pinned yet).
package dialhint

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// Explain returns err with the next step added when it is a connection
// that did not reach serverURL or a certificate this computer does not
// trust; other errors come back as they are. The original error stays in
// the chain (errors.Is and errors.As still see it).
func Explain(serverURL string, err error) error {
	if err == nil {
		return nil
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		dns      *net.DNSError
		op       *net.OpError
	)
	switch {
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return &hinted{err: err, hint: fmt.Sprintf(
			"this computer does not know the certificate of %s (assist serve makes its own): run `assist login %s`, or pass --server-fingerprint sha256:HEX as assist serve printed it",
			serverURL, serverURL)}
	case errors.As(err, &dns):
		return &hinted{err: err, hint: fmt.Sprintf("no server is known by the name in %s: check the address (as assist serve printed it)", serverURL)}
	case errors.As(err, &op) && op.Op == "dial":
		return &hinted{err: err, hint: fmt.Sprintf("cannot reach %s: is `assist serve` running at %s?", serverURL, serverURL)}
	}
	return err
}

// hinted is an error with the next step in front of it.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.hint + " (" + h.err.Error() + ")" }
func (h *hinted) Unwrap() error { return h.err }

// Hint returns the next step Explain added somewhere in err's chain and
// the error it explained, so a command can put the step first, where a
// person reads, and the cause after it.
func Hint(err error) (hint string, cause error, ok bool) {
	var h *hinted
	if errors.As(err, &h) {
		return h.hint, h.err, true
	}
	return "", nil, false
}
