package hub

import "github.com/assist-project/assist/audit"

// postgresMigrations bring the PostgreSQL schema from version i to i+1,
// as sqliteMigrations do SQLite's. Append only. The first step is the
// schema SQLite reached in five: PostgreSQL came later. Times are unix
// nanoseconds (BIGINT) as in SQLite, so both engines share every query;
// "user" is quoted: it is a reserved word in PostgreSQL.
var postgresMigrations = []string{
	`CREATE TABLE accounts (
		"user"  TEXT PRIMARY KEY,
		display TEXT NOT NULL,
		created BIGINT NOT NULL
	);
	CREATE TABLE devices (
		id          TEXT PRIMARY KEY,
		"user"      TEXT NOT NULL REFERENCES accounts("user") ON DELETE CASCADE,
		key         BYTEA NOT NULL UNIQUE,
		name        TEXT NOT NULL,
		cert_signer BYTEA,
		cert_sig    BYTEA,
		created     BIGINT NOT NULL
	);
	CREATE INDEX devices_user ON devices("user", created);
	CREATE TABLE contacts (
		"user"  TEXT NOT NULL REFERENCES accounts("user") ON DELETE CASCADE,
		other   TEXT NOT NULL REFERENCES accounts("user") ON DELETE CASCADE,
		created BIGINT NOT NULL,
		PRIMARY KEY ("user", other)
	);
	CREATE TABLE blocks (
		"user"  TEXT NOT NULL REFERENCES accounts("user") ON DELETE CASCADE,
		other   TEXT NOT NULL,
		created BIGINT NOT NULL,
		PRIMARY KEY ("user", other)
	);
	CREATE TABLE requests (
		id          TEXT PRIMARY KEY,
		sender      TEXT NOT NULL,
		sender_dev  TEXT NOT NULL,
		sender_conn TEXT NOT NULL,
		recipient   TEXT NOT NULL,
		kind        TEXT NOT NULL,
		created     BIGINT NOT NULL,
		expires     BIGINT NOT NULL,
		closed      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX requests_recipient ON requests(recipient, closed, expires);
	CREATE INDEX requests_sender ON requests(sender, closed, expires);
	CREATE INDEX requests_expires ON requests(closed, expires);
	CREATE TABLE orgs (
		name      TEXT PRIMARY KEY,
		display   TEXT NOT NULL,
		rights    TEXT NOT NULL,
		record    BOOLEAN NOT NULL,
		timeout   BIGINT NOT NULL,
		created   BIGINT NOT NULL,
		retention BIGINT NOT NULL DEFAULT 0,
		audit_key TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE org_members (
		org    TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		"user" TEXT NOT NULL,
		role   TEXT NOT NULL,
		PRIMARY KEY (org, "user")
	);
	CREATE INDEX org_members_user ON org_members("user");
	CREATE TABLE org_tokens (
		hash    BYTEA PRIMARY KEY,
		org     TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		uses    BIGINT NOT NULL,
		expires BIGINT NOT NULL,
		created BIGINT NOT NULL
	);
	CREATE TABLE org_machines (
		"user"   TEXT PRIMARY KEY REFERENCES accounts("user") ON DELETE CASCADE,
		org      TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		enrolled BIGINT NOT NULL
	);
	CREATE INDEX org_machines_org ON org_machines(org, "user");
	` + audit.PostgresSchema + `;
	CREATE TABLE audit_orgs (
		chain  BYTEA NOT NULL,
		org    TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		"user" TEXT NOT NULL,
		PRIMARY KEY (chain, org)
	);
	CREATE INDEX audit_orgs_org ON audit_orgs(org);
	CREATE TABLE audit_server_orgs (
		seq BIGINT NOT NULL,
		org TEXT NOT NULL,
		PRIMARY KEY (org, seq)
	);
	CREATE TABLE org_oidc (
		org         TEXT PRIMARY KEY REFERENCES orgs(name) ON DELETE CASCADE,
		issuer      TEXT NOT NULL,
		client_id   TEXT NOT NULL,
		secret_file TEXT NOT NULL,
		claim       TEXT NOT NULL
	);
	CREATE TABLE org_oidc_links (
		org     TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		issuer  TEXT NOT NULL,
		subject TEXT NOT NULL,
		"user"  TEXT NOT NULL,
		PRIMARY KEY (org, issuer, subject)
	);`,
}
