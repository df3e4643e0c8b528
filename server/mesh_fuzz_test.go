package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// memMesh is a Mesh of one node that sends nowhere: enough to feed
// meshHandle what another node might send.
type memMesh struct {
	mu   sync.Mutex
	sent int
}

func (m *memMesh) Node() string { return "a" }
func (m *memMesh) Claim(context.Context, string, []byte) (string, error) {
	return "", nil
}
func (m *memMesh) Release(context.Context, string) error { return nil }
func (m *memMesh) Refresh(context.Context, []string) ([]string, error) {
	return nil, nil
}
func (m *memMesh) Home(context.Context, string) (string, error) { return "", nil }
func (m *memMesh) Send(string, []byte) error {
	m.mu.Lock()
	m.sent++
	m.mu.Unlock()
	return nil
}
func (m *memMesh) Ask(context.Context, string, []byte) ([]byte, error) { return nil, context.Canceled }
func (m *memMesh) Listen(func([]byte) []byte) (func(), error)          { return func() {}, nil }
func (m *memMesh) Every() time.Duration                                { return time.Hour }
func (m *memMesh) Ready(context.Context) error                         { return nil }

// FuzzMeshHandle: whatever another node sends, the home node neither
// panics nor keeps a remote client for a message that is not a join.
func FuzzMeshHandle(f *testing.F) {
	for _, s := range []string{
		`{"op":"join","from":"b","conn":"c1","addr":"127.0.0.2","msg":{"type":"join","id":"x1"}}`,
		`{"op":"signal","from":"b","conn":"c1","msg":{"type":"relay","data":"x"}}`,
		`{"op":"left","from":"b","conn":"c1"}`,
		`{"op":"send","from":"b","conn":"c1","msg":{"type":"queued"}}`,
		`{"op":"close","from":"b","conn":"c1","code":1001,"reason":"x"}`,
		`{"op":"check","from":"b","edges":["c1"],"remotes":["c2"]}`,
		`{"op":"ice","from":"b","session":"s"}`,
		`{"op":"moved","from":"b","id":"x1"}`, `{"op":"moved","from":"a","id":""}`,
		`{"op":"join","from":"b","conn":"c1","addr":"::1","msg":{"type":"register","id":"x1","expires":"2099-01-01T00:00:00Z"}}`,
		`{"op":"join","from":"","msg":null}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	ts := startServer(f, "", func(c *Config) { c.Mesh = &memMesh{}; c.Logger = slog.New(slog.DiscardHandler) })
	f.Cleanup(ts.stop)
	f.Fuzz(func(t *testing.T, b []byte) {
		ts.meshHandle(b)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		for k, rc := range ts.mesh.remotes {
			if rc.role != roleExpert && rc.role != rolePending {
				t.Fatalf("remote client %v has role %s", k, rc.role)
			}
		}
	})
}
