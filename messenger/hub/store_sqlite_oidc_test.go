package hub_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/assist-project/assist/messenger/hub"
)

// TestSQLiteOIDC: an organisation's OpenID provider and its links, per
// organisation and issuer; both go with the organisation.
func TestSQLiteOIDC(t *testing.T) {
	ctx := context.Background()
	s, err := hub.OpenSQLite(ctx, filepath.Join(t.TempDir(), "messenger.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := hub.OIDC{Issuer: "https://id.example", ClientID: "c", SecretFile: "/etc/secret", Claim: "email"}
	if err := s.SetOIDC(ctx, "acme", p); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("SetOIDC without the organisation: %v", err)
	}
	if err := s.CreateOrg(ctx, hub.Org{Name: "acme", Display: "ACME", Policy: hub.DefaultPolicy(), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OIDC(ctx, "acme"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("OIDC before: %v", err)
	}
	if err := s.SetOIDC(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	p.ClientID = "c2"
	if err := s.SetOIDC(ctx, "acme", p); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OIDC(ctx, "acme"); got != p || err != nil {
		t.Errorf("OIDC: %+v %v, want %+v", got, err, p)
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", "alice"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		org, issuer, subject, want string
	}{
		{"acme", p.Issuer, "sub1", "alice"},
		{"acme", "https://other.example", "sub1", ""},
		{"other", p.Issuer, "sub1", ""},
		{"acme", p.Issuer, "sub2", ""},
	} {
		got, err := s.OIDCUser(ctx, tc.org, tc.issuer, tc.subject)
		if tc.want == "" && !errors.Is(err, hub.ErrNotFound) || tc.want != "" && (got != tc.want || err != nil) {
			t.Errorf("OIDCUser(%s, %s, %s) = %q, %v; want %q", tc.org, tc.issuer, tc.subject, got, err, tc.want)
		}
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", ""); err != nil {
		t.Errorf("unlink: %v", err)
	}
	if err := s.LinkOIDC(ctx, "acme", p.Issuer, "sub1", ""); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("unlink again: %v", err)
	}
	if _, err := s.OIDCUser(ctx, "acme", p.Issuer, "sub1"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("after unlink: %v", err)
	}
}
