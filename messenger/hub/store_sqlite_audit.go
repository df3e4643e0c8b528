package hub

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/assist-project/assist/audit"
)

// AuditStore keeps the organisations' audit trail beside their rows.
// SQLiteStore implements it; a Hub whose Store does not (or that has no
// Config.AuditKey) keeps none and refuses every audit message.
type AuditStore interface {
	// Audit is the store of chains (package audit) in the same
	// database.
	Audit(ctx context.Context) (*audit.SQLStore, error)
	// LinkAuditChain records that user uploaded chain as a person or
	// machine of org.
	LinkAuditChain(ctx context.Context, chain ed25519.PublicKey, org, user string) error
	// AuditChains returns the chains of org's people and machines, with
	// the account that uploaded each.
	AuditChains(ctx context.Context, org string) ([]AuditChainOwner, error)
	// MarkServerEntry records that the server's entry seq concerns org.
	MarkServerEntry(ctx context.Context, seq uint64, org string) error
	// ServerEntries returns the numbers of the server's entries that
	// concern org.
	ServerEntries(ctx context.Context, org string) (map[uint64]bool, error)
	// SetRetention sets how long org's audit entries are kept (0: for
	// ever; ErrNotFound for no such organisation).
	SetRetention(ctx context.Context, org string, keep time.Duration) error
	// Retentions returns every organisation's retention.
	Retentions(ctx context.Context) (map[string]time.Duration, error)
}

// AuditChainOwner is a stored chain and the account that uploaded it.
type AuditChainOwner struct {
	Chain ed25519.PublicKey
	User  string
}

// Audit implements AuditStore.
func (s *SQLStore) Audit(ctx context.Context) (*audit.SQLStore, error) {
	s.auditOnce.Do(func() { s.audit, s.auditErr = audit.NewSQLStore(ctx, s.db.SQL) })
	return s.audit, s.auditErr
}

// LinkAuditChain implements AuditStore.
func (s *SQLStore) LinkAuditChain(ctx context.Context, chain ed25519.PublicKey, org, user string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_orgs (chain, org, "user") VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, []byte(chain), org, user)
	if err != nil {
		return fmt.Errorf("messenger store: audit chain: %w", err)
	}
	return nil
}

// AuditChains implements AuditStore.
func (s *SQLStore) AuditChains(ctx context.Context, org string) ([]AuditChainOwner, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT chain, "user" FROM audit_orgs WHERE org = ? ORDER BY "user", chain`, org)
	if err != nil {
		return nil, fmt.Errorf("messenger store: audit chains: %w", err)
	}
	defer rows.Close()
	var out []AuditChainOwner
	for rows.Next() {
		var o AuditChainOwner
		var k []byte
		if err := rows.Scan(&k, &o.User); err != nil {
			return nil, fmt.Errorf("messenger store: audit chains: %w", err)
		}
		o.Chain = k
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: audit chains: %w", err)
	}
	return out, nil
}

// MarkServerEntry implements AuditStore.
func (s *SQLStore) MarkServerEntry(ctx context.Context, seq uint64, org string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO audit_server_orgs (seq, org) VALUES (?, ?) ON CONFLICT DO NOTHING`, seq, org); err != nil {
		return fmt.Errorf("messenger store: audit entry: %w", err)
	}
	return nil
}

// ServerEntries implements AuditStore.
func (s *SQLStore) ServerEntries(ctx context.Context, org string) (map[uint64]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq FROM audit_server_orgs WHERE org = ?`, org)
	if err != nil {
		return nil, fmt.Errorf("messenger store: audit entries: %w", err)
	}
	defer rows.Close()
	out := map[uint64]bool{}
	for rows.Next() {
		var seq uint64
		if err := rows.Scan(&seq); err != nil {
			return nil, fmt.Errorf("messenger store: audit entries: %w", err)
		}
		out[seq] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: audit entries: %w", err)
	}
	return out, nil
}

// SetRetention implements AuditStore.
func (s *SQLStore) SetRetention(ctx context.Context, org string, keep time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE orgs SET retention = ? WHERE name = ?`, int64(keep/(24*time.Hour)), org)
	return affectedOne(res, err, "retention of "+org)
}

// Retentions implements AuditStore.
func (s *SQLStore) Retentions(ctx context.Context) (map[string]time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, retention FROM orgs`)
	if err != nil {
		return nil, fmt.Errorf("messenger store: retention: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Duration{}
	for rows.Next() {
		var org string
		var days int64
		if err := rows.Scan(&org, &days); err != nil {
			return nil, fmt.Errorf("messenger store: retention: %w", err)
		}
		out[org] = time.Duration(days) * 24 * time.Hour
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: retention: %w", err)
	}
	return out, nil
}
