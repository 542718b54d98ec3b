-- The webhook database (webhooks.db beside hub.db): endpoints, the relay's
-- cursors and the delivery log. River's own tables (the durable job queue)
-- are in the same file, created by rivermigrate. A separate file keeps
-- River's polling writes off the ledger's write lock.
CREATE TABLE webhook_endpoints (
    id              TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    types           TEXT    NOT NULL DEFAULT '[]', -- JSON array; empty: every type
    secret          TEXT    NOT NULL,              -- whsec_...
    old_secret      TEXT    NOT NULL DEFAULT '',   -- still signs until old_until
    old_until       INTEGER NOT NULL DEFAULT 0,    -- Unix microseconds
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT    NOT NULL DEFAULT '',
    failing_since   INTEGER NOT NULL DEFAULT 0,    -- Unix microseconds; 0: not failing
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant, id);

-- The relay's position in each event log (ledger, catalog): the last seq
-- turned into jobs, moved in the transaction that inserts them.
CREATE TABLE webhook_cursors (
    source TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL
) STRICT;

-- One row per delivery attempt; pruned after the retention.
CREATE TABLE webhook_deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint   TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    status     INTEGER NOT NULL,
    ok         INTEGER NOT NULL,
    error      TEXT    NOT NULL DEFAULT '',
    ms         INTEGER NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint, id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);
