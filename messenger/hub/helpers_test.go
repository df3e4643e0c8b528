package hub_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assist-project/assist/internal/natstest"
	"github.com/assist-project/assist/internal/pgtest"
	"github.com/assist-project/assist/messenger"
	"github.com/assist-project/assist/messenger/hub"
	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.M(m), natstest.LeakOptions()...) }

// wait bounds every wait for something that should happen at once.
const wait = 10 * time.Second

// clock is real time plus an offset that tests move forward.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// testHub is a Hub behind a loopback HTTPS server with a fresh SQLite
// store; everything stops in t.Cleanup.
type testHub struct {
	*hub.Hub
	URL   string
	FP    string
	Store *hub.SQLiteStore
	Clock *clock
	ts    *httptest.Server
}

func startHub(t *testing.T, tweak func(*hub.Config)) *testHub {
	t.Helper()
	ctx := context.Background()
	st, err := hub.OpenSQLite(ctx, filepath.Join(t.TempDir(), "messenger.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	ts.StartTLS()
	sum := sha256.Sum256(ts.Certificate().Raw)
	clk := &clock{}
	cfg := hub.Config{Store: st, Fingerprint: sum, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /v1/messenger", h)
	t.Cleanup(func() {
		h.Close()
		ts.Close()
		st.Close()
	})
	return &testHub{Hub: h, URL: ts.URL, FP: messenger.FormatFingerprint(sum), Store: st, Clock: clk, ts: ts}
}

// user is one device of a user, logged in.
type user struct {
	name string
	key  ed25519.PrivateKey
	*messenger.Client
}

func (u *user) pub() ed25519.PublicKey { return u.key.Public().(ed25519.PublicKey) }

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (th *testHub) dial(t *testing.T, key ed25519.PrivateKey, opts messenger.LoginOptions) (*messenger.Client, messenger.Welcome, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, w, err := messenger.Dial(ctx, th.URL, th.FP, key, opts)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, w, err
}

// login creates the account name with a fresh device key.
func (th *testHub) login(t *testing.T, name string) *user {
	t.Helper()
	k := newKey(t)
	c, w, err := th.dial(t, k, messenger.LoginOptions{User: name})
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	if !w.Created || w.User != name {
		t.Fatalf("login %s: %+v", name, w)
	}
	return &user{name: name, key: k, Client: c}
}

// again logs in another connection of u's device.
func (th *testHub) again(t *testing.T, u *user) *user {
	t.Helper()
	c, _, err := th.dial(t, u.key, messenger.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &user{name: u.name, key: u.key, Client: c}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// exchangeKeys stands in for package pairing: each side relays its key;
// it returns what each received.
func exchangeKeys(t *testing.T, p1 *messenger.Pair, k1 ed25519.PublicKey, p2 *messenger.Pair, k2 ed25519.PublicKey) (got1, got2 ed25519.PublicKey) {
	t.Helper()
	sendKey(t, p1, k1)
	sendKey(t, p2, k2)
	return recvKey(t, p1), recvKey(t, p2)
}

func sendKey(t *testing.T, p *messenger.Pair, k ed25519.PublicKey) {
	t.Helper()
	if err := p.Send(k); err != nil {
		t.Error(err)
	}
}

func recvKey(t *testing.T, p *messenger.Pair) ed25519.PublicKey {
	t.Helper()
	b, err := p.Recv(ctxT(t))
	if err != nil {
		t.Error(err)
	}
	return b
}

// befriend makes a and b contacts by a contact pairing.
// openPair has a open a pairing for purpose and b join it.
func openPair(t *testing.T, ctx context.Context, a, b *user, purpose string) (pa, pb *messenger.Pair) {
	t.Helper()
	pa, err := a.PairOpen(ctx, purpose)
	if err != nil {
		t.Fatal(err)
	}
	pb, err = b.PairJoin(ctx, pa.ID, purpose)
	if err != nil {
		t.Fatal(err)
	}
	return pa, pb
}

func befriend(t *testing.T, a, b *user) {
	t.Helper()
	ctx := ctxT(t)
	pa, pb := openPair(t, ctx, a, b, messenger.PurposeContact)
	if peer, err := pa.Peer(ctx); err != nil || peer.User != b.name {
		t.Fatalf("opener's peer = %+v, %v", peer, err)
	}
	kb, ka := exchangeKeys(t, pb, b.pub(), pa, a.pub())
	errc := make(chan error, 1)
	go func() {
		_, err := pb.Done(ctx, kb, nil)
		errc <- err
	}()
	r, err := pa.Done(ctx, ka, nil)
	if err != nil || r.Type != messenger.TypeContactAdded || r.User != b.name {
		t.Fatalf("opener's pair-done: %+v, %v", r, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("joiner's pair-done: %v", err)
	}
	pa.Close()
	pb.Close()
}

// next returns u's next event for which keep is true, skipping others.
func next(t *testing.T, u *user, keep func(messenger.Message) bool) messenger.Message {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-u.Events():
			if !ok {
				t.Fatalf("%s: events closed: %v", u.name, u.Err())
			}
			if keep(m) {
				return m
			}
		case <-timer.C:
			t.Fatalf("%s: no such event within %v", u.name, wait)
		}
	}
}

func ofType(types ...string) func(messenger.Message) bool {
	return func(m messenger.Message) bool { return slices.Contains(types, m.Type) }
}

func presenceOf(name, state string) func(messenger.Message) bool {
	return func(m messenger.Message) bool {
		return m.Type == messenger.TypePresence && m.User == name && m.State == state
	}
}

// sync makes sure everything u's earlier messages caused has been sent:
// the server handles a connection's messages in order.
func sync_(t *testing.T, u *user) {
	t.Helper()
	if _, _, err := u.Contacts(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// sentinel proves that stranger got no event before now from what others
// did before: it makes friend (a contact of stranger) change state and
// expects that presence as stranger's very next event (other than
// presence of friend itself).
func sentinel(t *testing.T, stranger, friend *user, leak func(messenger.Message) bool) {
	t.Helper()
	for _, s := range []string{messenger.StateAway, messenger.StateOnline} {
		if err := friend.SetState(ctxT(t), s); err != nil {
			t.Fatal(err)
		}
		m := next(t, stranger, func(m messenger.Message) bool {
			return leak(m) || m.Type == messenger.TypePresence && m.User == friend.name && m.State == s
		})
		if leak(m) {
			t.Fatalf("%s got %+v", stranger.name, m)
		}
	}
}

func isCode(t *testing.T, err error, code string) {
	t.Helper()
	if !messenger.IsCode(err, code) {
		t.Fatalf("error %v, want code %q", err, code)
	}
}

// raw is a WebSocket to the hub that speaks JSON by hand.
type raw struct {
	ws *websocket.Conn
}

func (th *testHub) raw(t *testing.T) *raw {
	t.Helper()
	ws, _, err := websocket.Dial(ctxT(t), "wss"+th.URL[len("https"):]+"/v1/messenger",
		&websocket.DialOptions{HTTPClient: th.ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &raw{ws: ws}
}

func (r *raw) send(t *testing.T, s string) {
	t.Helper()
	if err := r.ws.Write(ctxT(t), websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next message, or the read error.
func (r *raw) recv(t *testing.T) (messenger.Message, error) {
	t.Helper()
	_, b, err := r.ws.Read(ctxT(t))
	if err != nil {
		return messenger.Message{}, err
	}
	m, err := messenger.ParseServerMessage(b)
	if err != nil {
		t.Fatalf("server sent %s: %v", b, err)
	}
	return m, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var errAny = errors.New("any")
