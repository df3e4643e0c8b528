package server

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	ts := startServer(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := DialSignal(ctx, ts.URL, "sha256:00"); err == nil {
		t.Error("dialled with a wrong pin")
	}
	novice, err := DialSignal(ctx, ts.URL, ts.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	defer novice.Close()
	expert, err := DialSignal(ctx, ts.URL, ts.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	defer expert.Close()

	var se *SignalError
	if _, err := expert.Join(ctx, "7-crayon"); !errors.As(err, &se) || se.Code != CodeUnknown {
		t.Fatalf("join before register: %v, want %q", err, CodeUnknown)
	}
	if err := novice.Register(ctx, "7-crayon", ts.Clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Both ends on one address: STUN only. Only the novice learns where
	// the expert is.
	p, err := expert.Join(ctx, "7-crayon")
	if err != nil || p.Session == "" || len(p.ICE) != 1 || p.ICE[0].Username != "" || p.From.IsValid() {
		t.Fatalf("join: %+v, %v", p, err)
	}
	if m, err := novice.Recv(ctx); err != nil || m.Type != TypePaired || m.Session != p.Session || m.From.String() != "127.0.0.1" {
		t.Fatalf("novice: %+v, %v", m, err)
	}
	if err := novice.Relay(ctx, json.RawMessage(`{"pake":"AQID"}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := expert.Recv(ctx); err != nil || m.Type != TypeRelay || string(m.Data) != `{"pake":"AQID"}` {
		t.Fatalf("expert: %+v, %v", m, err)
	}
	if err := expert.Bye(ctx, ReasonAuthFailed); err != nil {
		t.Fatal(err)
	}
	if m, err := novice.Recv(ctx); err != nil || m.Type != TypeBye || m.Reason != ReasonAuthFailed {
		t.Fatalf("novice: %+v, %v", m, err)
	}
}
