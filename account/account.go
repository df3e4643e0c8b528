package account

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/assist-project/assist/identity"
	"github.com/assist-project/assist/internal/dialhint"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/pairing"
)

// Device is this installation: its config directory, key and config.
type Device struct {
	dir *identity.Dir
	key ed25519.PrivateKey
	cfg *identity.Config
}

// Open opens the config directory (empty: identity.DefaultDir), creating
// the device key on first use, and reads the config.
func Open(dir string) (*Device, error) {
	d, err := identity.Open(dir)
	if err != nil {
		return nil, err
	}
	key, err := d.DeviceKey()
	if err != nil {
		return nil, err
	}
	cfg, err := d.LoadConfig()
	if err != nil {
		return nil, err
	}
	return &Device{dir: d, key: key, cfg: cfg}, nil
}

// Config returns the config as loaded or last saved. Callers must not
// change it.
func (d *Device) Config() *identity.Config { return d.cfg }

// PublicKey returns this device's public key.
func (d *Device) PublicKey() ed25519.PublicKey { return d.key.Public().(ed25519.PublicKey) }

// me is this device's identity in pairings.
func (d *Device) me() pairing.Info {
	display := d.cfg.Display
	if display == "" {
		display = d.cfg.User
	}
	return pairing.Info{Key: d.PublicKey(), User: d.cfg.User, Display: display}
}

// LoginOptions are the inputs of Login.
type LoginOptions struct {
	// Server is the server's URL, https://HOST[:PORT].
	Server string
	// Fingerprint pins the server's certificate ("sha256:HEX"). Empty: the
	// pin saved for this server, or, the first time, the certificate the
	// server shows (trust on first use; see FirstUse).
	Fingerprint string
	// User and Display name the account to create when this device's key
	// is new to the server.
	User, Display string
	// Code is a device code (from `assist devices add` on a device of
	// account User): this device joins that account.
	Code string
	// FirstUse is called with the server's fingerprint when it is trusted
	// on first use, before it is saved, so the caller can show it.
	FirstUse func(fingerprint string)
	// Token enrols this device as the machine User of an organisation
	// (an enrolment token from its admin); DeviceName is the machine's
	// name, Display the user logged in on it.
	Token      string
	DeviceName string
}

// ErrNotLoggedIn: no server in the config.
var ErrNotLoggedIn = errors.New("this device is not logged in: run `assist login https://SERVER --user NAME` first")

// Login logs this device in (creating the account, or linking the device
// with a code) and saves the server, its pin and the account in the config.
// Logging in to another server or account forgets the contacts pinned for
// the previous one.
func (d *Device) Login(ctx context.Context, o LoginOptions) (messenger.Welcome, error) {
	server, err := canonicalServer(o.Server)
	if err != nil {
		return messenger.Welcome{}, err
	}
	fp := o.Fingerprint
	firstUse := false
	switch {
	case fp != "":
		if fp, err = identity.CanonicalCertFingerprint(fp); err != nil {
			return messenger.Welcome{}, err
		}
	case d.cfg.Server == server && d.cfg.Fingerprint != "":
		fp = d.cfg.Fingerprint
	default:
		if fp, err = ProbeFingerprint(ctx, server); err != nil {
			return messenger.Welcome{}, err
		}
		firstUse = true
	}
	opts := messenger.LoginOptions{User: o.User, Display: o.Display, Token: o.Token, DeviceName: o.DeviceName}
	var linkedPins map[string]identity.Contact // from the old device of a link
	if o.Code != "" {
		code, err := pairing.ParseCode(o.Code)
		if err != nil {
			return messenger.Welcome{}, err
		}
		if o.User == "" {
			return messenger.Welcome{}, errors.New("a device code needs the account's name: add --user NAME")
		}
		me := pairing.Info{Key: d.PublicKey(), User: o.User, Display: o.User}
		opts.Code = code.PairID
		opts.Link = func(ctx context.Context, p *messenger.Pair) (ed25519.PublicKey, error) {
			peer, err := pairing.Run(ctx, p, pairing.Joiner, code.Secret, code.PairID, pairing.PurposeDevice, me)
			if err != nil {
				return nil, err
			}
			if peer.User != o.User {
				return nil, fmt.Errorf("the device that made this code belongs to %q, not %q: check the name", peer.User, o.User)
			}
			b, err := p.Recv(ctx)
			if err != nil {
				return nil, fmt.Errorf("waiting for the contacts of the other device: %w", err)
			}
			if linkedPins, err = openPins(b, peer.Key, o.User, me.Key); err != nil {
				return nil, err
			}
			return peer.Key, nil
		}
	}
	if firstUse && o.FirstUse != nil {
		o.FirstUse(fp)
	}
	c, w, err := messenger.Dial(ctx, server, fp, d.key, opts)
	if err != nil {
		return messenger.Welcome{}, explainDial(err, fp, firstUse)
	}
	c.Close()
	cfg := *d.cfg
	if cfg.Server != server || cfg.User != w.User {
		cfg.Contacts = nil
	}
	if linkedPins != nil {
		cfg.Contacts = maps.Clone(cfg.Contacts)
		for u, ct := range linkedPins {
			for _, k := range ct.Keys {
				key, _ := identity.ParseKey(k) // checked by openPins
				cfg.Pin(u, ct.Display, key)
			}
		}
	}
	cfg.Server, cfg.Fingerprint, cfg.User, cfg.Display = server, fp, w.User, w.Display
	if err := d.save(&cfg); err != nil {
		return messenger.Welcome{}, err
	}
	return w, nil
}

// save writes cfg and makes it the current config.
func (d *Device) save(cfg *identity.Config) error {
	if err := d.dir.SaveConfig(cfg); err != nil {
		return err
	}
	d.cfg = cfg
	return nil
}

// explainDial adds what to do to a failed connection.
func explainDial(err error, fp string, firstUse bool) error {
	switch {
	case messenger.IsCode(err, messenger.CodeTaken):
		return err // the server's message says what to do
	case !firstUse && strings.Contains(err.Error(), "certificate fingerprint"):
		return fmt.Errorf("%w: the server's certificate is not the one pinned (%s); if its admin confirms it changed, log in again with --server-fingerprint", err, fp)
	}
	return err
}

// Connect connects to the saved server with the saved pin. server, when not
// empty, overrides the saved URL (the pin still applies).
func (d *Device) Connect(ctx context.Context, server string) (*messenger.Client, error) {
	if d.cfg.Server == "" || d.cfg.User == "" {
		return nil, ErrNotLoggedIn
	}
	if server == "" {
		server = d.cfg.Server
	}
	c, _, err := messenger.Dial(ctx, server, d.cfg.Fingerprint, d.key, messenger.LoginOptions{})
	if messenger.IsCode(err, messenger.CodeNotFound) {
		return nil, fmt.Errorf("this device is no longer in account %s on %s (removed from it, or the server forgot it): "+
			"on a device still in it run `assist devices add`, then here `assist login %s --user %s --code CODE`", d.cfg.User, server, server, d.cfg.User)
	}
	if err != nil {
		return nil, explainDial(err, d.cfg.Fingerprint, false)
	}
	return c, nil
}

// canonicalServer checks a server URL and drops a trailing slash.
func canonicalServer(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("server %q: want https://HOST[:PORT]", s)
	}
	return "https://" + u.Host, nil
}

// probeTimeout bounds ProbeFingerprint.
const probeTimeout = 15 * time.Second

// ProbeFingerprint connects to server with TLS, checking nothing, and
// returns the SHA-256 fingerprint of the certificate it shows: what a first
// login pins. HTTPS_PROXY is not used for the probe.
func ProbeFingerprint(ctx context.Context, server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", server, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: u.Hostname(),
		// Trust on first use: the certificate is pinned as shown, and the
		// caller shows its fingerprint so that it can be compared.
		InsecureSkipVerify: true,
	}}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return "", dialhint.Explain(server, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("%s sent no certificate", server)
	}
	return messenger.FormatFingerprint(sha256.Sum256(certs[0].Raw)), nil
}
