package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/mailer"
	"github.com/assist-project/assist/mailer/relay"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assist-project/assist/messenger/hub"
	"github.com/assist-project/assist/messenger/hub/natsbus"
	"github.com/assist-project/assist/messenger/oidclogin"
	"github.com/assist-project/assist/messenger/passkey"
	"github.com/assist-project/assist/web"
)

// messengerApp is what `assist serve` serves beside the signalling: the
// messenger (/v1/messenger), passkey sign-in for the web app
// (/v1/webauthn/) and the web app itself (/). Its stores live in dataDir,
// or in the PostgreSQL database of storeURL; close runs when the server
// has stopped.
//
// maxConnsPerAddr bounds one address's messenger connections, as
// --max-conns-per-address does the signalling's. busURL (--bus) is the
// NATS the messenger's presence and deliveries go through, shared by
// several servers; empty keeps them in this process.
func messengerApp(ctx context.Context, dataDir, storeURL string, cert tls.Certificate, ln net.Listener, publicURL string, maxConnsPerAddr int, mail *mailer.SMTP, mailPerHour int, busURL string) (app http.Handler, closeAll func(), err error) {
	var closers []func()
	closeEach := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	closeAll = closeEach
	defer func() {
		// Not closeAll: an error return has set it to nil.
		if err != nil {
			closeEach()
		}
	}()
	fp := sha256.Sum256(cert.Certificate[0])
	store, err := openHubStore(ctx, storeURL, dataDir)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { store.Close() })
	// The server's own audit chain is signed with a key made once in
	// --data (back it up with the database: a new key starts a new chain).
	auditKey, err := audit.LoadOrCreateKey(filepath.Join(dataDir, "audit.key"))
	if err != nil {
		return nil, nil, err
	}
	bus, err := openBus(ctx, busURL)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { bus.Close() })
	h, err := hub.New(hub.Config{Store: store, Bus: bus, Fingerprint: fp, Logger: slog.Default(), MaxConnsPerAddress: maxConnsPerAddr, AuditKey: auditKey,
		RecordingsDir: filepath.Join(dataDir, "recordings")})
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { h.Close() })
	mux := http.NewServeMux()
	mux.Handle("/v1/messenger", h)
	mux.Handle("/", web.ExpertApp())
	if mail != nil {
		// The e-mail relay (package mailer/relay) for the messenger's
		// devices: they sign with the key the hub knows them by.
		rl, err := relay.New(relay.Config{SMTP: mail, Fingerprint: fp, PerHour: mailPerHour, Logger: slog.Default(),
			Devices: func(ctx context.Context, key []byte) (string, error) {
				d, err := store.DeviceByKey(ctx, key)
				return d.User, err
			}})
		if err != nil {
			return nil, nil, err
		}
		mux.Handle(relay.Path, rl)
		slog.Info("e-mail relay for logged-in users", "smtp_host", mail.Host)
	}

	rp, origin := relyingParty(ln, publicURL)
	if _, ipErr := netip.ParseAddr(rp); ipErr == nil {
		// Browsers refuse passkeys for IP addresses; the page says the
		// messenger is not available.
		slog.Warn("the web app's passkey sign-in is off: browsers accept passkeys only for a host name; give --public-url https://NAME:PORT", "host", rp)
		return messengerHandler{mux, h}, closeAll, nil
	}
	keys, err := openPasskeyStore(ctx, storeURL, dataDir)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { keys.Close() })
	svc, err := passkey.New(passkey.Config{RPID: rp, Origins: []string{origin}, Fingerprint: fp,
		Accounts: passkey.HubAccounts{Store: store}, Store: keys, Logger: slog.Default()})
	if err != nil {
		return nil, nil, err
	}
	mux.Handle("/v1/webauthn/", svc)
	slog.Info("web app sign-in with passkeys", "origin", origin)
	// Organisations' helpers and admins may also sign in with their
	// company's OpenID provider (assist org oidc); it ends as a passkey
	// sign-in does, with this browser's key a device of the account.
	oc, err := oidclogin.New(oidclogin.Config{Origin: origin, Orgs: store, Accounts: passkey.HubAccounts{Store: store},
		HTTPClient: &http.Client{Timeout: 30 * time.Second}, Logger: slog.Default()})
	if err != nil {
		return nil, nil, err
	}
	mux.Handle("/v1/oidc/", oc)
	return messengerHandler{mux, h}, closeAll, nil
}

// messengerHandler is messengerApp's handler; Ready is the messenger's
// part of /readyz (its bus reaches the other nodes).
type messengerHandler struct {
	http.Handler
	hub *hub.Hub
}

// Ready returns nil if the messenger can serve.
func (m messengerHandler) Ready(ctx context.Context) error { return m.hub.Ready(ctx) }

// openBus opens the messenger's bus: in-process without --bus, else NATS
// (which must answer within 30 s).
func openBus(ctx context.Context, busURL string) (hub.Bus, error) {
	if busURL == "" {
		return hub.NewMemBus(), nil
	}
	if !strings.HasPrefix(busURL, "nats://") && !strings.HasPrefix(busURL, "tls://") {
		return nil, fmt.Errorf("--bus %q: give nats://HOST:PORT (several separated by commas), or leave it out for one server", busURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name, _ := os.Hostname()
	bus, err := natsbus.Open(ctx, natsbus.Config{URL: busURL, Name: "assist serve " + name, Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	slog.Info("messenger presence and deliveries through NATS", "nats", bus.URL())
	return bus, nil
}

// relyingParty is the host passkeys are bound to and the page's origin:
// those of --public-url, else https://localhost:PORT (a browser on this
// machine; browsers refuse passkeys for 127.0.0.1).
func relyingParty(ln net.Listener, publicURL string) (host, origin string) {
	if publicURL != "" {
		if u, err := url.Parse(publicURL); err == nil && u.Hostname() != "" {
			return u.Hostname(), u.Scheme + "://" + u.Host
		}
	}
	port := "443"
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = fmt.Sprint(a.Port)
	}
	if port == "443" {
		return "localhost", "https://localhost"
	}
	return "localhost", "https://localhost:" + port
}
