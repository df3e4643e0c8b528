package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/assist-project/assist/internal/sqldb"
)

// OIDC is an organisation's OpenID Connect provider, through which its
// helpers and admins sign in to the web app.
type OIDC struct {
	// Issuer is the provider's issuer URL (discovery is under it).
	Issuer string
	// ClientID is this server's client id at the provider.
	ClientID string
	// SecretFile is the path of the file holding the client secret (read
	// at each sign-in, so the secret never sits in the database).
	SecretFile string
	// Claim names the person in messages and logs ("email",
	// "preferred_username"); it never decides who is who: the subject does.
	Claim string
}

// OIDCStore keeps organisations' OpenID providers and the subjects linked
// to accounts. SQLiteStore implements it.
type OIDCStore interface {
	// SetOIDC sets org's provider (ErrNotFound: no such organisation).
	SetOIDC(ctx context.Context, org string, o OIDC) error
	// OIDC returns org's provider (ErrNotFound: none).
	OIDC(ctx context.Context, org string) (OIDC, error)
	// LinkOIDC links the provider's subject to user in org; an empty user
	// removes the link (ErrNotFound: no such organisation or link).
	LinkOIDC(ctx context.Context, org, issuer, subject, user string) error
	// OIDCUser returns the account linked to the subject (ErrNotFound).
	OIDCUser(ctx context.Context, org, issuer, subject string) (string, error)
}

// SetOIDC implements OIDCStore.
func (s *SQLStore) SetOIDC(ctx context.Context, org string, o OIDC) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO org_oidc (org, issuer, client_id, secret_file, claim) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (org) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
		secret_file = excluded.secret_file, claim = excluded.claim`, org, o.Issuer, o.ClientID, o.SecretFile, o.Claim)
	if err != nil && sqldb.IsForeignKey(err) {
		return fmt.Errorf("messenger store: organisation %s: %w", org, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("messenger store: set the OpenID provider: %w", err)
	}
	return nil
}

// OIDC implements OIDCStore.
func (s *SQLStore) OIDC(ctx context.Context, org string) (OIDC, error) {
	var o OIDC
	err := s.db.QueryRowContext(ctx, `SELECT issuer, client_id, secret_file, claim FROM org_oidc WHERE org = ?`, org).
		Scan(&o.Issuer, &o.ClientID, &o.SecretFile, &o.Claim)
	if errors.Is(err, sql.ErrNoRows) {
		return OIDC{}, fmt.Errorf("messenger store: OpenID provider of %s: %w", org, ErrNotFound)
	}
	if err != nil {
		return OIDC{}, fmt.Errorf("messenger store: OpenID provider of %s: %w", org, err)
	}
	return o, nil
}

// LinkOIDC implements OIDCStore.
func (s *SQLStore) LinkOIDC(ctx context.Context, org, issuer, subject, user string) error {
	if user == "" {
		res, err := s.db.ExecContext(ctx, `DELETE FROM org_oidc_links WHERE org = ? AND issuer = ? AND subject = ?`, org, issuer, subject)
		return affectedOne(res, err, "unlink "+subject)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO org_oidc_links (org, issuer, subject, "user") VALUES (?, ?, ?, ?)
		ON CONFLICT (org, issuer, subject) DO UPDATE SET "user" = excluded."user"`, org, issuer, subject, user)
	if err != nil && sqldb.IsForeignKey(err) {
		return fmt.Errorf("messenger store: organisation %s: %w", org, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("messenger store: link %s: %w", subject, err)
	}
	return nil
}

// OIDCUser implements OIDCStore.
func (s *SQLStore) OIDCUser(ctx context.Context, org, issuer, subject string) (string, error) {
	var user string
	err := s.db.QueryRowContext(ctx, `SELECT "user" FROM org_oidc_links WHERE org = ? AND issuer = ? AND subject = ?`, org, issuer, subject).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("messenger store: OpenID subject: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("messenger store: OpenID subject: %w", err)
	}
	return user, nil
}
