package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/assist-project/assist/internal/sqldb"
	"github.com/assist-project/assist/messenger"
)

var _ OrgStore = (*SQLStore)(nil)

// CreateOrg implements OrgStore.
func (s *SQLStore) CreateOrg(ctx context.Context, o Org) error {
	if err := o.Policy.Check(); err != nil {
		return fmt.Errorf("messenger store: create organisation %s: %w", o.Name, err)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO orgs (name, display, rights, record, timeout, created, audit_key) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		o.Name, o.Display, strings.Join(o.Policy.Rights, " "), o.Policy.Record, o.Policy.Timeout, o.Created.UnixNano(), o.Policy.AuditKey)
	if sqldb.IsUnique(err) {
		return fmt.Errorf("messenger store: create organisation %s: %w", o.Name, ErrTaken)
	}
	if err != nil {
		return fmt.Errorf("messenger store: create organisation: %w", err)
	}
	return nil
}

// Org implements OrgStore.
func (s *SQLStore) Org(ctx context.Context, name string) (Org, error) {
	o := Org{Name: name}
	var rights string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT display, rights, record, timeout, created, audit_key FROM orgs WHERE name = ?`, name).
		Scan(&o.Display, &rights, &o.Policy.Record, &o.Policy.Timeout, &created, &o.Policy.AuditKey)
	if errors.Is(err, sql.ErrNoRows) {
		return Org{}, fmt.Errorf("messenger store: organisation %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Org{}, fmt.Errorf("messenger store: organisation: %w", err)
	}
	o.Policy.Rights = strings.Fields(rights)
	o.Created = time.Unix(0, created)
	return o, nil
}

// SetPolicy implements OrgStore.
func (s *SQLStore) SetPolicy(ctx context.Context, org string, p messenger.Policy) error {
	if err := p.Check(); err != nil {
		return fmt.Errorf("messenger store: policy of %s: %w", org, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE orgs SET rights = ?, record = ?, timeout = ?, audit_key = ? WHERE name = ?`,
		strings.Join(p.Rights, " "), p.Record, p.Timeout, p.AuditKey, org)
	return affectedOne(res, err, "policy of "+org)
}

// affectedOne turns "no row changed" into ErrNotFound.
func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("messenger store: %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("messenger store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("messenger store: %s: %w", what, ErrNotFound)
	}
	return nil
}

// SetRole implements OrgStore.
func (s *SQLStore) SetRole(ctx context.Context, org, user, role string) error {
	if role == "" {
		res, err := s.db.ExecContext(ctx, `DELETE FROM org_members WHERE org = ? AND "user" = ?`, org, user)
		return affectedOne(res, err, "remove "+user+" from "+org)
	}
	if !ValidRole(role) {
		return fmt.Errorf("messenger store: role %q: want admin, helper or member", role)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO org_members (org, "user", role) VALUES (?, ?, ?)
		ON CONFLICT (org, "user") DO UPDATE SET role = excluded.role`, org, user, role)
	if err != nil && sqldb.IsForeignKey(err) {
		return fmt.Errorf("messenger store: organisation %s: %w", org, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("messenger store: set role: %w", err)
	}
	return nil
}

// Roles implements OrgStore.
func (s *SQLStore) Roles(ctx context.Context, user string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT org, role FROM org_members WHERE "user" = ?`, user)
	if err != nil {
		return nil, fmt.Errorf("messenger store: roles: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var org, role string
		if err := rows.Scan(&org, &role); err != nil {
			return nil, fmt.Errorf("messenger store: roles: %w", err)
		}
		out[org] = role
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: roles: %w", err)
	}
	return out, nil
}

// AddToken implements OrgStore.
func (s *SQLStore) AddToken(ctx context.Context, org string, hash [32]byte, uses int, expires, now time.Time) error {
	if uses < 1 {
		return errors.New("messenger store: a token needs at least one use")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO org_tokens (hash, org, uses, expires, created) VALUES (?, ?, ?, ?, ?)`,
		hash[:], org, uses, expires.UnixNano(), now.UnixNano())
	if err != nil && sqldb.IsForeignKey(err) {
		return fmt.Errorf("messenger store: organisation %s: %w", org, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("messenger store: add token: %w", err)
	}
	return nil
}

// Enrol implements OrgStore.
func (s *SQLStore) Enrol(ctx context.Context, hash [32]byte, a Account, d Device, now time.Time) (string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("messenger store: enrol: %w", err)
	}
	defer tx.Rollback()
	var org string
	// Spending the use and reading the organisation are one statement, so
	// two enrolments cannot both take a token's last use.
	err = tx.QueryRowContext(ctx, `UPDATE org_tokens SET uses = uses - 1 WHERE hash = ? AND uses > 0 AND expires > ? RETURNING org`,
		hash[:], now.UnixNano()).Scan(&org)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("messenger store: enrol: %w", ErrExpired)
	}
	if err != nil {
		return "", fmt.Errorf("messenger store: enrol: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO accounts ("user", display, created) VALUES (?, ?, ?)`, a.User, a.Display, a.Created.UnixNano())
	if sqldb.IsUnique(err) {
		return "", fmt.Errorf("messenger store: enrol %s: %w", a.User, ErrTaken)
	}
	if err != nil {
		return "", fmt.Errorf("messenger store: enrol: %w", err)
	}
	d.User = a.User
	if err := insertDevice(ctx, tx, d); err != nil {
		return "", fmt.Errorf("messenger store: enrol %s: %w", a.User, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO org_machines ("user", org, enrolled) VALUES (?, ?, ?)`, a.User, org, now.UnixNano()); err != nil {
		return "", fmt.Errorf("messenger store: enrol: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM org_tokens WHERE uses <= 0 OR expires <= ?`, now.UnixNano()); err != nil {
		return "", fmt.Errorf("messenger store: enrol: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("messenger store: enrol: %w", err)
	}
	return org, nil
}

// MachineOrg implements OrgStore.
func (s *SQLStore) MachineOrg(ctx context.Context, user string) (string, error) {
	var org string
	err := s.db.QueryRowContext(ctx, `SELECT org FROM org_machines WHERE "user" = ?`, user).Scan(&org)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("messenger store: machine %s: %w", user, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("messenger store: machine: %w", err)
	}
	return org, nil
}

// Machines implements OrgStore.
func (s *SQLStore) Machines(ctx context.Context, org string) ([]OrgMachine, error) {
	// A machine has one device (its agent's key): the first.
	rows, err := s.db.QueryContext(ctx, `SELECT m."user", a.display, m.enrolled,
			(SELECT d.name FROM devices d WHERE d."user" = m."user" ORDER BY d.created LIMIT 1)
		FROM org_machines m JOIN accounts a ON a."user" = m."user" WHERE m.org = ? ORDER BY m."user"`, org)
	if err != nil {
		return nil, fmt.Errorf("messenger store: machines: %w", err)
	}
	defer rows.Close()
	var out []OrgMachine
	for rows.Next() {
		m := OrgMachine{Org: org}
		var enrolled int64
		var name sql.NullString
		if err := rows.Scan(&m.User, &m.Display, &enrolled, &name); err != nil {
			return nil, fmt.Errorf("messenger store: machines: %w", err)
		}
		m.Name, m.Enrolled = name.String, time.Unix(0, enrolled)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messenger store: machines: %w", err)
	}
	return out, nil
}
