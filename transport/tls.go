package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

const (
	// alpnProtocol is the one ALPN protocol both ends offer. A TLS server
	// that is not Assist either rejects it or does not select it, which the
	// expert reports as ErrNotAssist before sending anything.
	alpnProtocol = "assist/1"
	// exporterLabel and contextLabel build the PAKE's channel binding:
	// contextLabel || ExportKeyingMaterial(exporterLabel, nil, exporterLen).
	exporterLabel = "EXPORTER-assist-pake-v1"
	contextLabel  = "assist/1 direct\x00"
	exporterLen   = 32
)

var (
	errNoPeerCertificate = errors.New("tls: the peer sent no certificate")
	errNoALPN            = errors.New("tls: the peer did not select the assist/1 protocol")
)

// newCertificate makes the novice's ephemeral self-signed certificate. Its
// contents do not matter to the expert, which checks no name or chain; the
// key pair lives only in memory, for one Listener.
func newCertificate(now time.Time) (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: generate certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Assist invitation"},
		// Generous bounds: nothing checks them, and a novice whose clock is
		// off must not trip a stricter TLS stack.
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// serverTLSConfig is the novice's TLS configuration.
func serverTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{alpnProtocol},
		// No resumption: every connection gets a full handshake, its own
		// exporter, and no ticket state to keep.
		SessionTicketsDisabled: true,
	}
}

// clientTLSConfig is the expert's TLS configuration. The certificate is not
// checked against any authority on purpose: the PAKE authenticates the
// novice, bound to this very session by the exporter.
func clientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{alpnProtocol},
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errNoPeerCertificate
			}
			if cs.NegotiatedProtocol != alpnProtocol {
				return errNoALPN
			}
			return nil
		},
	}
}

// bindingContext is the PAKE's channel identifier for a TLS connection whose
// handshake is complete. Both ends compute the same value; two different TLS
// sessions never do.
func bindingContext(c *tls.Conn) ([]byte, error) {
	cs := c.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
	if err != nil {
		return nil, fmt.Errorf("transport: tls exporter: %w", err)
	}
	return append([]byte(contextLabel), ekm...), nil
}
