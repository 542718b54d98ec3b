-- The hub's catalog: tenants, API keys, agents, campaigns, codes, tokens,
-- customers, signing keys and the audit log. Times are Unix microseconds.
-- Every row a snapshot carries has a "version": the tenant's catalog
-- version when it last changed, so a delta is "version > since".

CREATE TABLE catalog_tenants (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	currency   TEXT NOT NULL,
	version    INTEGER NOT NULL,
	changed_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- API keys. tenant is '' for platform keys (role 'platform'). Only the
-- SHA-256 of the secret is kept.
CREATE TABLE catalog_keys (
	id         TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL,
	role       TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	agent      TEXT NOT NULL DEFAULT '',
	hash       BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;
CREATE INDEX catalog_keys_tenant ON catalog_keys (tenant);

CREATE TABLE catalog_agents (
	tenant     TEXT NOT NULL REFERENCES catalog_tenants (id),
	id         TEXT NOT NULL,
	store      TEXT NOT NULL,
	region     TEXT NOT NULL DEFAULT '',
	time_zone  TEXT NOT NULL DEFAULT '',
	store_group TEXT NOT NULL DEFAULT '',
	envelope   TEXT NOT NULL,          -- snapshot.RiskEnvelope as JSON
	key_id     TEXT NOT NULL,          -- its credential in catalog_keys
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT;

CREATE TABLE catalog_campaigns (
	tenant     TEXT NOT NULL REFERENCES catalog_tenants (id),
	id         TEXT NOT NULL,
	status     TEXT NOT NULL,
	revision   INTEGER NOT NULL,
	doc        TEXT NOT NULL,          -- rules.Campaign as JSON
	stopped_at INTEGER,
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT;
CREATE INDEX catalog_campaigns_version ON catalog_campaigns (tenant, version);

-- Plain codes, keyed by codes.Normalize(printed).
CREATE TABLE catalog_codes (
	tenant     TEXT NOT NULL,
	code       TEXT NOT NULL,
	printed    TEXT NOT NULL,
	campaign   TEXT NOT NULL,
	uses       INTEGER NOT NULL,       -- -1 = unlimited
	balance    INTEGER,                -- gift cards: initial balance, minor units
	stores     TEXT NOT NULL DEFAULT '[]',
	store_group TEXT NOT NULL DEFAULT '',
	revoked_at INTEGER,
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, code),
	FOREIGN KEY (tenant, campaign) REFERENCES catalog_campaigns (tenant, id)
) STRICT;
CREATE INDEX catalog_codes_version ON catalog_codes (tenant, version);
CREATE INDEX catalog_codes_campaign ON catalog_codes (tenant, campaign, code);

CREATE TABLE catalog_tokens (
	tenant     TEXT NOT NULL,
	serial     TEXT NOT NULL,
	campaign   TEXT NOT NULL,
	customer   TEXT NOT NULL DEFAULT '',
	kid        TEXT NOT NULL,
	uses       INTEGER NOT NULL,
	value      INTEGER NOT NULL DEFAULT 0,
	currency   TEXT NOT NULL DEFAULT '',
	text       TEXT NOT NULL,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	issued_by  TEXT NOT NULL,
	revoked_at INTEGER,
	version    INTEGER NOT NULL,
	PRIMARY KEY (tenant, serial),
	FOREIGN KEY (tenant, campaign) REFERENCES catalog_campaigns (tenant, id)
) STRICT;
CREATE INDEX catalog_tokens_customer ON catalog_tokens (tenant, customer);
CREATE INDEX catalog_tokens_revoked ON catalog_tokens (tenant, version) WHERE revoked_at IS NOT NULL;
CREATE INDEX catalog_tokens_kid ON catalog_tokens (kid, expires_at);

CREATE TABLE catalog_customers (
	tenant     TEXT NOT NULL REFERENCES catalog_tenants (id),
	id         TEXT NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	name       TEXT NOT NULL DEFAULT '',
	phone      TEXT NOT NULL DEFAULT '',
	segment    TEXT NOT NULL DEFAULT '',
	tier       TEXT NOT NULL DEFAULT '',
	attributes TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	erased_at  INTEGER,
	PRIMARY KEY (tenant, id)
) STRICT;

-- Tenant signing keys (Ed25519). The private key is stored in the database
-- for now (see docs/api.md). retired_at is set on rotation; not_after is
-- then the expiry of the last token the key signed.
CREATE TABLE catalog_signing_keys (
	kid        TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL REFERENCES catalog_tenants (id),
	public     BLOB NOT NULL,
	private    BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	retired_at INTEGER,
	not_after  INTEGER
) STRICT;
CREATE INDEX catalog_signing_keys_tenant ON catalog_signing_keys (tenant);

CREATE TABLE catalog_audit (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	tenant     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	target     TEXT NOT NULL,
	before     TEXT,
	after      TEXT,
	version    INTEGER NOT NULL,
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX catalog_audit_tenant ON catalog_audit (tenant, id);
CREATE INDEX catalog_audit_target ON catalog_audit (tenant, target);

-- Responses of online redemptions by Idempotency-Key, so a retried request
-- gets the first answer.
CREATE TABLE catalog_idempotency (
	tenant     TEXT NOT NULL,
	key        TEXT NOT NULL,
	request    BLOB NOT NULL,          -- SHA-256 of method, path and body
	status     INTEGER NOT NULL,
	body       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, key)
) STRICT;
