package server

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cert, err := LoadOrCreateCert(dir, "assist.example.org", "192.0.2.7", "[2001:db8::1]")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "assist.example.org", "192.0.2.7", "2001:db8::1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	again, err := LoadOrCreateCert(dir, "other.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if CertFingerprint(again) != CertFingerprint(cert) {
		t.Error("a second load made a new certificate")
	}
	// Half a pair is refused rather than silently replaced.
	os.Remove(filepath.Join(dir, KeyFile))
	if _, err := LoadOrCreateCert(dir); err == nil {
		t.Error("loaded a certificate without its key")
	}
}

func TestPinnedTLSConfig(t *testing.T) {
	dir := t.TempDir()
	cert, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(fp string) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), PinnedTLSConfig(fp))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(CertFingerprint(cert)); err != nil {
		t.Errorf("pinned to the right fingerprint: %v", err)
	}
	if err := dial(CertFingerprint(other)); err == nil {
		t.Error("pinned to another fingerprint, yet connected")
	}
}
