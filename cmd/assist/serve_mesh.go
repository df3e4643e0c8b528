package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/assist-project/assist/server"
	"github.com/assist-project/assist/server/natsmesh"
)

// clusterShared is what every node of a cluster must have in common, or
// clients break: the certificate they pin, the TURN secret the relays
// check credentials with, the key the audit chain is signed with.
type clusterShared struct {
	Fingerprint string // the TLS certificate's, "sha256:HEX"
	TURNSecret  string
	AuditKey    ed25519.PublicKey // nil: not checked
}

// signalMesh joins this node's rendezvous server to the others over the
// NATS at busURL (--bus), as node, and checks that the nodes share what
// they must. busURL "" is a single node: nil, nothing to close. The
// errors say what the operator must do.
func signalMesh(ctx context.Context, busURL, node string, shared clusterShared) (server.Mesh, func(), error) {
	if busURL == "" {
		return nil, func() {}, nil
	}
	if err := natsmesh.ValidNode(node); err != nil {
		return nil, nil, fmt.Errorf("--node: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := natsmesh.Dial(dctx, busURL, natsmesh.Config{Node: node, Logger: slog.Default()})
	if err != nil {
		return nil, nil, fmt.Errorf("--bus %s: %w: check that NATS runs there with JetStream enabled", redactURL(busURL), err)
	}
	checks := []struct{ name, value, fix string }{
		{"certificate", shared.Fingerprint, "give every node the same --cert and --key (clients pin one fingerprint)"},
		{"turn-secret-sha256", hashHex([]byte(shared.TURNSecret)), "give every node the same --turn-secret-file, or one shared --store"},
	}
	if shared.AuditKey != nil {
		checks = append(checks, struct{ name, value, fix string }{"audit-key", hashHex(shared.AuditKey),
			"copy audit.key from the first node's --data to this node's"})
	}
	for _, c := range checks {
		if err := m.Agree(dctx, c.name, c.value); err != nil {
			m.Close()
			var de *natsmesh.DisagreeError
			if errors.As(err, &de) {
				return nil, nil, fmt.Errorf("this node differs from the others: %w: %s", err, c.fix)
			}
			return nil, nil, fmt.Errorf("--bus %s: %w", redactURL(busURL), err)
		}
	}
	slog.Info("joined the other nodes", "node", node)
	return m, m.Close, nil
}

// defaultNode names this node when --node is not given: the host's name,
// cut to what a node name may hold.
func defaultNode() string {
	h, err := os.Hostname()
	if err != nil {
		return "node"
	}
	h, _, _ = strings.Cut(h, ".")
	var b strings.Builder
	for _, c := range []byte(h) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 || b.Len() > 64 {
		return "node"
	}
	return b.String()
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// redactURL drops a URL's password (nats://user:pass@host) for messages.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…@" + u[i+1:]
		}
	}
	return u
}
