package rendezvous

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/assist-project/assist/server"
)

// TestJoinGoingAway: a server that closes a waiting join with status 1001
// (going away: it drains, and a load balancer sends the next connection
// elsewhere) does not end the join: the expert joins again and is paired.
func TestJoinGoingAway(t *testing.T) {
	cert, err := server.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	// Plays a draining node, then the node the balancer picks next.
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		if _, _, err := ws.Read(ctx); err != nil { // the join
			return
		}
		if conns.Add(1) == 1 {
			_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"queued"}`))
			_ = ws.Close(websocket.StatusGoingAway, "server shutting down: connect again")
			return
		}
		_ = ws.Write(ctx, websocket.MessageText, []byte(`{"type":"paired","session":"s1","ice":[]}`))
		_, _, _ = ws.Read(ctx) // until the client closes
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	defer hs.Close()

	c, m, err := joinRegistered(context.Background(), hs.URL, server.CertFingerprint(cert), "1234", 0)
	if err != nil {
		t.Fatalf("join through a server going away: %v", err)
	}
	defer c.Close()
	if m.Type != server.TypePaired || m.Session != "s1" || conns.Load() != 2 {
		t.Errorf("got %+v after %d connections, want paired on the second", m, conns.Load())
	}
}
