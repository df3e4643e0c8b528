package rtc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"time"

	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Config holds what both Dial and Accept need.
type Config struct {
	// Password is the invitation password; it must not be empty.
	Password string
	// InvitationID names the invitation (1..MaxInvitationID bytes of
	// printable ASCII); it is CPace's session id.
	InvitationID string
	// SecretInvitationID keeps InvitationID out of log lines: set it when
	// the id is a capability (a messenger session's id), and put a tag of
	// it in Logger instead.
	SecretInvitationID bool
	// Name is, for Dial, the expert's display name shown to the novice (at
	// most MaxName bytes, no control characters). Accept ignores it.
	Name string
	// ICEServers are the STUN and TURN servers (from the rendezvous server).
	ICEServers []webrtc.ICEServer
	// Logger receives the connection's log lines, pion's included (pion's
	// errors at Info, its warnings at Debug); nil discards them.
	Logger *slog.Logger
	// IncludeLoopback gathers loopback host candidates, for tests on one
	// machine.
	IncludeLoopback bool
	// ProxyURL is an HTTP(S) proxy through which TURN over TCP and TLS is
	// reached with CONNECT. When nil, each TCP or TLS TURN server's proxy
	// is taken from the environment (HTTPS_PROXY, NO_PROXY) as
	// http.ProxyFromEnvironment does. UDP never goes through a proxy.
	ProxyURL *url.URL
	// TURNPin is the SHA-256 of the DER certificate that a TURN server over
	// TLS (turns: URLs) may present instead of one the system's certificate
	// authorities vouch for for its host. Set it to the rendezvous server's
	// pinned fingerprint: its embedded TURN server shares the HTTPS
	// certificate, self-signed by default. Nil: the system's roots only.
	TURNPin []byte
	// RelayOnly gathers only relayed candidates (ICE transport policy
	// "relay"), for tests of the TURN paths.
	RelayOnly bool
	// BeforeAuth, if set, is called once the data channel is open, just
	// before the handshake that makes a password attempt, so that a caller
	// racing several ways to the peer can let one attempt run at a time.
	// It may block until ctx (Dial's or Accept's) ends. If it returns an
	// error, the connection is closed and Dial or Accept returns that error
	// in a *HandshakeError of stage "hello" and no Kind. Otherwise done is
	// called exactly once with the handshake's outcome: nil when it
	// authenticated, else the *HandshakeError returned.
	BeforeAuth func(ctx context.Context) (done func(err error), err error)
	// AttemptFailed, if set, is called by Accept when the expert's
	// password attempt failed and counts: it counts the attempt and
	// returns how many the invitation has left, which the expert is told
	// (auth.Params.AttemptFailed). The caller's own count after Accept
	// returns must then not count it twice.
	AttemptFailed func() (left int)
	// AuthTimeout bounds, for Accept, the handshake inside the data
	// channel from the moment it opens: an expert who sets up the
	// connection and then sends nothing (holding the pairing, and an
	// attempt in flight) is dropped after it. Default DefaultAuthTimeout.
	// Dial ignores it: ctx bounds the expert's side.
	AuthTimeout time.Duration
	// OpenTimeout bounds, for Accept, the setup of the connection up to
	// the open data channel: offer, ICE and DTLS. An expert who pairs and
	// never connects is dropped after it. Default DefaultOpenTimeout.
	// Dial ignores it: ctx bounds the expert's side.
	OpenTimeout time.Duration
	// OfferTimeout bounds, for Accept, the wait for the expert's offer,
	// which an expert sends first and at once. Default
	// DefaultOfferTimeout. Dial ignores it.
	OfferTimeout time.Duration

	// bindOverride, for tests only, replaces the channel binding by a fixed
	// value, to show that a relaying man in the middle is stopped by the
	// binding and by nothing else.
	bindOverride []byte
	// turnRoots, for tests only, replaces the system's certificate
	// authorities for TURN over TLS.
	turnRoots *x509.CertPool
}

// DefaultAuthTimeout is Config.AuthTimeout's default: the handshake takes
// three round trips, well under a second even through a relay.
const DefaultAuthTimeout = 5 * time.Second

// DefaultOpenTimeout is Config.OpenTimeout's default. Through a relay
// behind a CONNECT proxy the whole setup takes 2-3 s in the test matrix
// (time to the first frame); 15 s leaves room for slow networks and
// loaded machines while an expert who stalls holds the invitation for
// half the time the whole setup may take (30 s).
const DefaultOpenTimeout = 15 * time.Second

// DefaultOfferTimeout is Config.OfferTimeout's default: the offer is the
// expert's first message, sent the moment it is paired.
const DefaultOfferTimeout = 5 * time.Second

func (cfg *Config) check(expert bool) error {
	if cfg.Password == "" {
		return fmt.Errorf("empty password")
	}
	if err := checkInvitationID(cfg.InvitationID); err != nil {
		return err
	}
	if expert {
		if err := checkName(cfg.Name); err != nil {
			return err
		}
	}
	return nil
}

func (cfg *Config) logger() *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// newCertificate makes the ephemeral DTLS certificate of one connection and
// returns it with its SHA-256 fingerprint. A fresh key per connection means
// a fingerprint identifies one session and nothing about the machine.
func newCertificate() (webrtc.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return webrtc.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return webrtc.Certificate{}, nil, err
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "assist"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return webrtc.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return webrtc.Certificate{}, nil, err
	}
	fp := sha256.Sum256(der)
	return webrtc.CertificateFromX509(key, cert), fp[:], nil
}

// sctpMinWindow is the smallest congestion window SCTP may fall to: more
// than a 20 Mbit/s 40 ms path's bandwidth-delay product (100 KB), so that
// on the links people have the multiplexer's pacing, not SCTP's reaction
// to random loss, sets the rate. Measured across a 20 Mbit/s 40 ms link
// losing 1% of packets (rfbbench, video): 64 KiB gave 727 KB/s, 128 KiB
// 728-823 KB/s, 256 KiB 866 KB/s, against 314-338 KB/s without a floor.
const sctpMinWindow = 128 << 10

// newAPI builds the pion API for one connection.
func newAPI(cfg *Config, log *slog.Logger) (*webrtc.API, *turnDialer, error) {
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	// Blocking writes give Conn.Write back-pressure and write deadlines.
	se.EnableDataChannelBlockWrite(true)
	se.SetSCTPMaxMessageSize(maxMessage)
	// SCTP's retransmission timer doubles up to 60 s by default, so after
	// a long outage (resumed by an ICE restart) the first data would wait
	// up to a minute more; 5 s keeps a resumed session responsive.
	se.SetSCTPRTOMax(5 * time.Second)
	// SCTP halves its window at every loss (Reno), so 1% random loss
	// (Wi-Fi, a busy home router) held a 20 Mbit/s 40 ms path to about a
	// sixth of its rate and the expert's picture ran seconds behind. The
	// session multiplexer already keeps each stream's bytes in flight at
	// its path's bandwidth-delay product (package link, which reads the
	// delivery rate and ignores random loss as BBR does), so SCTP's window
	// only needs to stay out of its way: it may not shrink below
	// sctpMinWindow.
	se.SetSCTPMinCwnd(sctpMinWindow)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.LoggerFactory = slogFactory{log: log}
	// Every TCP and TLS TURN connection goes through turnDialer, proxy or
	// not: it bounds the dial, and it does TLS the way we need.
	d, err := newTURNDialer(cfg)
	if err != nil {
		return nil, nil, err
	}
	se.SetICEProxyDialer(d)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se)), d, nil
}

// slogFactory routes pion's logs to slog. Pion is chatty: its trace and
// debug lines are dropped, its info and warnings (routine failures such as
// an IPv6 socket that cannot bind) go to Debug, its errors to Info.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{log: f.log.With("pion", scope)}
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Trace(string)          {}
func (l slogLogger) Tracef(string, ...any) {}
func (l slogLogger) Debug(string)          {}
func (l slogLogger) Debugf(string, ...any) {}
func (l slogLogger) Info(msg string)       { l.log.Debug(msg) }
func (l slogLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
func (l slogLogger) Warn(msg string) { l.log.Debug(msg) }
func (l slogLogger) Warnf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}
func (l slogLogger) Error(msg string) { l.log.Info(msg) }
func (l slogLogger) Errorf(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...))
}
