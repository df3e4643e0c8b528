package main

import (
	"context"
	"strings"
	"testing"

	"github.com/assist-project/assist/internal/natstest"
)

// TestSignalMeshShared: nodes that differ in what clients rely on (the
// certificate they pin, the TURN secret, the audit key) are refused, with
// what to do; nodes that agree join.
func TestSignalMeshShared(t *testing.T) {
	ns := natstest.Start(t)
	ctx := context.Background()
	first := clusterShared{Fingerprint: "sha256:aa", TURNSecret: "s1", AuditKey: []byte("k1")}
	m, closeMesh, err := signalMesh(ctx, ns.URL, "n1", first)
	if err != nil {
		t.Fatal(err)
	}
	defer closeMesh()
	if m.Node() != "n1" {
		t.Errorf("node %q, want n1", m.Node())
	}
	_, close2, err := signalMesh(ctx, ns.URL, "n2", first)
	if err != nil {
		t.Fatalf("a node that agrees: %v", err)
	}
	close2()
	for _, tc := range []struct {
		name   string
		shared clusterShared
		want   string
	}{
		{"certificate", clusterShared{Fingerprint: "sha256:bb", TURNSecret: "s1", AuditKey: []byte("k1")}, "same --cert and --key"},
		{"turn secret", clusterShared{Fingerprint: "sha256:aa", TURNSecret: "s2", AuditKey: []byte("k1")}, "same --turn-secret-file"},
		{"audit key", clusterShared{Fingerprint: "sha256:aa", TURNSecret: "s1", AuditKey: []byte("k2")}, "copy audit.key"},
	} {
		if _, _, err := signalMesh(ctx, ns.URL, "n3", tc.shared); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s differs: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := signalMesh(ctx, ns.URL, "bad name", first); err == nil || !strings.Contains(err.Error(), "--node") {
		t.Errorf("a bad node name: %v", err)
	}
	if m, _, err := signalMesh(ctx, "", "n1", first); m != nil || err != nil {
		t.Errorf("no --bus: %v %v, want a single node", m, err)
	}
}
