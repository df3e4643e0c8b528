package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/assist-project/assist/audit"
	"github.com/assist-project/assist/internal/flagfile"
	"github.com/assist-project/assist/mailer"
	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/server/natsmesh"
	"github.com/assist-project/assist/server/relay"
)

// runServe runs the rendezvous server until ctx ends (SIGINT, SIGTERM),
// then shuts down gracefully.
func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("serve", os.Stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS address; loopback by default, --listen :8443 serves the network")
	dataDir := fs.String("data", defaultStateDir(), "directory for the database and the self-signed certificate (created 0700)")
	publicURL := fs.String("public-url", "", "the URL clients reach this server at, e.g. https://assist.example.org:8443; its host goes into a generated certificate")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) to serve instead of a self-signed one; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(tlsCert, "cert", "", "the same as --tls-cert: every node of a cluster serves the same one")
	fs.StringVar(tlsKey, "key", "", "the same as --tls-key")
	configFile := fs.String("config", "", "file of settings, one flag per line as NAME = VALUE (without dashes); flags on the command line win")
	node := fs.String("node", "", "this node's name among several behind a load balancer (letters, digits, - and _); labels /metrics. Default: the host's name")
	drainGrace := fs.Duration("drain-grace", 0, "on SIGTERM, how long /readyz says 503 before connected clients are told to connect again (a load balancer's check interval, e.g. 5s)")
	drainTimeout := fs.Duration("drain-timeout", 0, "on SIGTERM, how long at most to wait for sessions relayed by the embedded TURN server to end before exiting (e.g. 2m)")
	turnSecretFile := fs.String("turn-secret-file", "", "file holding the TURN REST shared secret (e.g. an external coturn's static-auth-secret); default: one generated and kept in --data")
	turnListen := fs.String("turn-listen", "127.0.0.1:3478", "address of the embedded STUN/TURN server over UDP and TCP (port 0 picks one; \"off\" disables it)")
	turnsListen := fs.String("turns-listen", "127.0.0.1:5349", "address of the embedded TURN server over TLS, with the HTTPS certificate (\"off\" disables it)")
	maxConnsPerAddr := fs.Int("max-conns-per-address", 64, "signalling connections one client address (an IPv4 address or an IPv6 /64) may hold at once, and as many messenger connections; behind a reverse proxy every client is the proxy's address")
	maxRelaysPerAddr := fs.Int("max-relays-per-address", 4, "live pairings with TURN credentials one client address may be party to; beyond, and for two ends on one address, pairings get STUN only")
	maxInvitesPerAddr := fs.Int("max-invitations-per-address", 20, "registrations one client address may keep live at once (each assist invite --server holds two: its short code and its invitation id; many novices behind one NAT may need more)")
	metricsPublic := fs.Bool("metrics-public", false, "serve /metrics to every client; by default only to loopback clients")
	mailFlags := addSMTPFlags(fs, "with these, the server e-mails invitations for logged-in users (assist invite --email-via server): the relay's")
	busURL := fs.String("bus", "", "NATS server(s) several assist serve share the messenger's presence and deliveries and the signalling between nodes through, nats://HOST:PORT[,nats://...] (nats-server 2.11 or later with JetStream); empty: this process alone. Every node needs the same --cert/--key, TURN secret and audit.key")
	mailPerHour := fs.Int("mail-per-hour", 10, "e-mails the relay sends for one account per hour, after a first 5")
	storeURL := fs.String("store", "", storeUsage)
	proxyProtocol := fs.Bool("proxy-protocol", false, "behind a TCP load balancer that sends the PROXY protocol (HAProxy's send-proxy-v2, v1 too): take each client's address from the header, so the per-address limits count clients, not the balancer. Connections from --proxy-from must send a header, others must not")
	proxyFrom := fs.String("proxy-from", "", "with --proxy-protocol, the balancers' addresses or CIDR prefixes, comma-separated (e.g. 10.0.0.5,10.0.1.0/24); default: loopback (127.0.0.0/8, ::1)")
	var ice iceURLFlag
	fs.Var(&ice, "ice-server", "STUN or TURN URL handed to clients, e.g. stun:HOST:3478 or turn:HOST:3478?transport=udp (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	if *configFile != "" {
		if err := flagfile.Apply(fs, *configFile, "config"); err != nil {
			return err
		}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(os.Stderr, "assist serve: --tls-cert and --tls-key (--cert and --key) go together")
		return errUsage
	}
	if *dataDir == "" {
		return errors.New("no --data directory given and no home directory to default to")
	}
	if err := checkStore(*storeURL); err != nil {
		return err
	}
	for name, v := range map[string]int{"--max-conns-per-address": *maxConnsPerAddr,
		"--max-relays-per-address": *maxRelaysPerAddr, "--max-invitations-per-address": *maxInvitesPerAddr} {
		if v < 1 {
			fmt.Fprintf(os.Stderr, "assist serve: %s must be at least 1\n", name)
			return errUsage
		}
	}
	proxyTrusted := server.DefaultProxyFrom
	if *proxyFrom != "" {
		if !*proxyProtocol {
			fmt.Fprintln(os.Stderr, "assist serve: --proxy-from needs --proxy-protocol")
			return errUsage
		}
		p, err := server.ParseProxyFrom(*proxyFrom)
		if err != nil {
			return fmt.Errorf("--proxy-from: %w", err)
		}
		proxyTrusted = p
	}
	var mailAccount *mailer.SMTP
	if mailFlags.set() {
		// Flags and $ASSIST_SMTP_PASSWORD only: mail.json is a user's.
		a, err := mailFlags.account(&mailer.Settings{})
		if err != nil {
			return fmt.Errorf("the mail relay: %w", err)
		}
		mailAccount = a
	}
	var publicHost string
	if *publicURL != "" {
		u, err := url.Parse(*publicURL)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" {
			return fmt.Errorf("--public-url %q: want https://HOST[:PORT]", *publicURL)
		}
		publicHost = u.Hostname()
	}
	iceGiven := append([]string(nil), ice...)
	if err := prepareDataDir(*dataDir); err != nil {
		return err
	}

	var cert tls.Certificate
	var err error
	if *tlsCert != "" {
		cert, err = tls.LoadX509KeyPair(*tlsCert, *tlsKey)
	} else {
		cert, err = server.LoadOrCreateCert(*dataDir, publicHost)
	}
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	var secret string
	if *turnSecretFile != "" {
		b, err := os.ReadFile(*turnSecretFile)
		if err != nil {
			return fmt.Errorf("--turn-secret-file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return fmt.Errorf("--turn-secret-file %s is empty", *turnSecretFile)
		}
	}

	store, err := openServerStore(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	if secret == "" {
		if secret, err = store.TURNSecret(ctx); err != nil {
			return err
		}
	}
	var rl *relay.Relay
	if *turnListen != "off" || *turnsListen != "off" {
		// Not stopped by the signal: relayed sessions go on while the
		// node drains (see drain); the deferred Close ends it.
		rl, err = startRelay(context.WithoutCancel(ctx), *turnListen, *turnsListen, cert, secret)
		if err != nil {
			return err
		}
		defer rl.Close()
		udp, tcp, tlsAddr := rl.Addrs()
		host := publicHost
		if host == "" {
			host = relayHost(rl)
		}
		if len(ice) == 0 {
			ice = relayICEURLs(host, udp, tcp, tlsAddr)
		}
	}
	// The signalling between nodes rides on the messenger's --bus too
	// (see signalMesh).
	nodeName := *node
	if nodeName == "" {
		nodeName = defaultNode()
	} else if err := natsmesh.ValidNode(nodeName); err != nil {
		return fmt.Errorf("--node: %w", err)
	}
	var auditPub ed25519.PublicKey
	if *busURL != "" {
		// Each node's own self-signed certificate would differ:
		// signalMesh refuses that and says what to do.
		if len(iceGiven) == 0 && (*turnListen != "off" || *turnsListen != "off") {
			// The pairing's home hands its ICE list to both ends, so each
			// node's own relay must be named by an address that reaches
			// that node, not the balancer's (which passes no TURN UDP).
			slog.Warn("several nodes: name this node's own TURN address for clients with --ice-server (e.g. turn:THIS-NODE.example.org:3478?transport=udp), or run separate relays with --turn-listen off --ice-server ... and one --turn-secret-file",
				"using", strings.Join(ice, " "))
		}
		k, err := audit.LoadOrCreateKey(filepath.Join(*dataDir, "audit.key"))
		if err != nil {
			return err
		}
		auditPub = k.Public().(ed25519.PublicKey)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	defer ln.Close()
	if *proxyProtocol {
		// Every later reader of a client's address (limits, logs, the
		// novice's "connected from") sees the header's.
		ln = server.ProxyProtocol(ln, proxyTrusted)
		slog.Info("PROXY protocol on", "trusted", fmt.Sprint(proxyTrusted))
	}
	// The messenger, passkeys and the web app (serve_web.go); passkeys
	// are bound to the address browsers use, so after Listen.
	app, closeApp, err := messengerApp(ctx, *dataDir, *storeURL, cert, ln, *publicURL, *maxConnsPerAddr, mailAccount, *mailPerHour, *busURL)
	if err != nil {
		return err
	}
	// Once: draining closes the messenger's connections early.
	closeApp = sync.OnceFunc(closeApp)
	defer closeApp()
	// After the messenger's bus, whose errors say more about NATS.
	mesh, closeMesh, err := signalMesh(ctx, *busURL, nodeName, clusterShared{Fingerprint: server.CertFingerprint(cert), TURNSecret: secret, AuditKey: auditPub})
	if err != nil {
		return err
	}
	defer closeMesh()
	srv, err := server.New(server.Config{Store: store, ICEServers: ice, TURNSecret: secret, Logger: slog.Default(),
		MaxConnsPerAddress:   *maxConnsPerAddr,
		MaxRelaysPerAddress:  *maxRelaysPerAddr,
		MaxNovicesPerAddress: *maxInvitesPerAddr,
		MetricsPublic:        *metricsPublic,
		Node:                 *node,
		Mesh:                 mesh,
		// /readyz: the messenger's bus too.
		ReadyChecks: map[string]func(context.Context) error{"messenger": app.(messengerHandler).Ready},
		// The expert's web app: https://SERVER/#CODE joins from a browser.
		App: app})
	if err != nil {
		return err
	}
	defer srv.Close()

	hs := &http.Server{
		Handler:           srv,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(httpErrorLog{}, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- hs.ServeTLS(ln, "", "") }()

	fmt.Fprintf(stdout, "listening on https://%s\n", ln.Addr())
	warnNoVNC(os.Stderr)
	fmt.Fprintf(stdout, "fingerprint: %s\n", server.CertFingerprint(cert))
	if len(ice) > 0 {
		fmt.Fprintf(stdout, "ice: %s\n", strings.Join(ice, " "))
	}
	slog.Info("serving", "addr", ln.Addr().String(), "data", *dataDir, "ice_servers", len(ice))

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	drain(srv, rl, *drainGrace, *drainTimeout, closeApp)
	// Signalling connections are hijacked, so http.Server.Shutdown does not
	// see them: close them (with "going away") first.
	srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	return nil
}

// prepareDataDir creates the --data directory, 0700 (whatever the umask),
// or warns when an existing one is open to other users: it holds the TLS
// key, the TURN secret and the database.
func prepareDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		// MkdirAll's mode passes through the umask.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("--data: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("--data %s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		slog.Warn("the --data directory is open to other users; it holds the server's private key and TURN secret: run chmod 700 on it",
			"dir", dir, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	return nil
}

// defaultStateDir is $XDG_STATE_HOME/assist, or ~/.local/state/assist.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "assist")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".local", "state", "assist")
}

// iceURLFlag collects the repeatable --ice-server flag.
type iceURLFlag []string

func (l *iceURLFlag) String() string     { return strings.Join(*l, ",") }
func (l *iceURLFlag) Set(s string) error { *l = append(*l, s); return nil }

// httpErrorLog sends net/http's own error log (TLS handshake failures from
// scanners, mostly) to slog at debug level.
type httpErrorLog struct{}

func (httpErrorLog) Write(b []byte) (int, error) {
	slog.Debug("http: " + strings.TrimSpace(string(b)))
	return len(b), nil
}

// startRelay starts the embedded STUN/TURN server: UDP and TCP on addr,
// TLS on tlsAddr, each unless "off".
func startRelay(ctx context.Context, addr, tlsAddr string, cert tls.Certificate, secret string) (*relay.Relay, error) {
	cfg := relay.Config{Secret: []byte(secret), Logger: slog.Default()}
	if addr != "off" {
		cfg.UDP, cfg.TCP = addr, addr
	}
	if tlsAddr != "off" {
		cfg.TLS = tlsAddr
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	rl, err := relay.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	return rl, nil
}

// relayHost is the address clients reach the relay at when no
// --public-url says otherwise: the one it listens on.
func relayHost(rl *relay.Relay) string {
	udp, _, tlsAddr := rl.Addrs()
	for _, a := range []net.Addr{udp, tlsAddr} {
		if a != nil {
			host, _, _ := net.SplitHostPort(a.String())
			return host
		}
	}
	return "127.0.0.1"
}

// relayICEURLs lists the embedded relay for clients: STUN, TURN over UDP
// and TCP, and TURN over TLS.
func relayICEURLs(host string, udp, tcp, tlsAddr net.Addr) []string {
	at := func(a net.Addr) string {
		_, port, _ := net.SplitHostPort(a.String())
		return net.JoinHostPort(host, port)
	}
	var urls []string
	if udp != nil {
		urls = append(urls, "stun:"+at(udp), "turn:"+at(udp)+"?transport=udp")
	}
	if tcp != nil {
		urls = append(urls, "turn:"+at(tcp)+"?transport=tcp")
	}
	if tlsAddr != nil {
		urls = append(urls, "turns:"+at(tlsAddr)+"?transport=tcp")
	}
	return urls
}

// drain takes this node out of a load balancer's rotation before it
// exits: /readyz turns 503 and new signalling connections are refused at
// once; after grace (the balancer's check interval) connected clients are
// told to connect again (status 1001), which sends them to another node;
// before waiting for relayed sessions, the messenger's connections are
// closed the same way (closeApp); then it waits, at most timeout, for
// the sessions the embedded relay (rl, nil if off) carries. Sessions set
// up directly need nothing from the server and go on.
func drain(srv *server.Server, rl *relay.Relay, grace, timeout time.Duration, closeApp func()) {
	srv.Drain()
	if grace > 0 {
		slog.Info("draining: waiting for the load balancer to notice", "grace", grace)
		time.Sleep(grace)
	}
	srv.Disconnect()
	if rl == nil || timeout <= 0 {
		return
	}
	// Not kept waiting for the relayed sessions either.
	closeApp()
	deadline := time.Now().Add(timeout)
	for n := rl.Stats().Allocations; n > 0; n = rl.Stats().Allocations {
		if time.Now().After(deadline) {
			slog.Info("draining: relayed sessions still running; ending them", "count", n, "after", timeout)
			return
		}
		// The relay reports no event when an allocation ends.
		time.Sleep(time.Second)
	}
}
