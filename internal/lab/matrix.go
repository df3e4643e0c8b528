package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// ProxyPort is the port StartTinyproxy listens on.
const ProxyPort = 8888

// StartTinyproxy runs an HTTP proxy (tinyproxy, Debian package tinyproxy)
// on NAT namespace ns (n.NAT1 or n.NAT2), on its LAN address, for its LAN
// only, and returns the proxy's URL for HTTPS_PROXY. It allows CONNECT to
// the ports connectPorts lists, or to any port when it lists none (Debian's
// own configuration allows only 443 and 563, like many corporate proxies).
// With the NAT in ProxyOnly mode it is the LAN's only way out.
func (n *Net) StartTinyproxy(t testing.TB, ns string, connectPorts ...int) (proxyURL string, p *Proc) {
	t.Helper()
	Need(t, "tinyproxy")
	lan := n.lanOf(t, ns)
	addr := NAT1LANAddr
	if ns == n.NAT2 {
		addr = NAT2LANAddr
	}
	// No User line: tinyproxy keeps running as the test's user (with a
	// warning) instead of switching to nobody, who could not write here.
	// No LogFile: with -d it logs to stderr, into p's output.
	conf := filepath.Join(n.dir, ns+"-tinyproxy.conf")
	text := fmt.Sprintf("Port %d\nListen %s\nTimeout 60\nLogLevel Info\nMaxClients 20\nAllow %s\n", ProxyPort, addr, lan)
	for _, port := range connectPorts {
		text += fmt.Sprintf("ConnectPort %d\n", port)
	}
	writeFile(t, conf, text)
	p = n.Start(t, ns, nil, "tinyproxy", "-d", "-c", conf)
	n.WaitListening(t, ns, "tcp", ProxyPort, p)
	return "http://" + net.JoinHostPort(addr, fmt.Sprint(ProxyPort)), p
}

// ServerCert is a certificate for the lab's server addresses, signed by a
// certificate authority of its own, as a rendezvous server with a real
// certificate (not the self-signed one assist serve makes) would have.
type ServerCert struct {
	CAFile   string // the authority, PEM: point SSL_CERT_FILE at it to trust it
	CertFile string // the server's certificate, PEM
	KeyFile  string // its private key, PEM
}

// NewServerCert makes a certificate authority and a server certificate
// valid for ips, in a temporary directory of t.
func NewServerCert(t testing.TB, ips ...string) ServerCert {
	t.Helper()
	dir := t.TempDir()
	fail := func(err error) {
		t.Helper()
		t.Fatalf("lab: server certificate: %v", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail(err)
	}
	now := time.Now()
	caTpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "assist lab CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		fail(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		fail(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "assist lab server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		tpl.IPAddresses = append(tpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		fail(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		fail(err)
	}
	sc := ServerCert{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	writeFile(t, sc.CAFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, sc.CertFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, sc.KeyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return sc
}
