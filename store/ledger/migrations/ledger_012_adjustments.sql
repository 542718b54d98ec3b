-- Support tools (issue 12, item 7).

-- A manual points adjustment is a journal entry of its own kind
-- ('points_adjusted', agent 'hub', the hub's next seq, psign 1, points
-- signed), so Verify counts it like any points entry; a positive one is a
-- lot (src: the entry), a negative one records its takes like a burn.
-- What the journal row does not hold (why, who, the reference) is here,
-- one row per adjustment, append-only.
CREATE TABLE ledger_adjustments (
    tenant     TEXT    NOT NULL,
    agent      TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    customer   TEXT    NOT NULL,
    points     INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    note       TEXT    NOT NULL DEFAULT '',
    reference  TEXT    NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL DEFAULT 0, -- Unix microseconds; 0: never
    actor      TEXT    NOT NULL,           -- the API key's id
    created_at INTEGER NOT NULL,           -- Unix microseconds, hub clock
    PRIMARY KEY (tenant, agent, seq)
) WITHOUT ROWID;

-- The customer history (support desk): a customer's journal entries and
-- conflicts, newest first, a page at a time. The queries repeat the
-- partial index's condition (customer != '') so that SQLite can use it
-- with a bound customer (ledger_002_last_redemption.sql dropped an index
-- that queries could not use). One more index entry per journal row with
-- a customer: the price of an indexed history (docs/operations.md).
CREATE INDEX ledger_journal_customer_id ON ledger_journal (tenant, customer, id) WHERE customer != '';
CREATE INDEX ledger_conflicts_customer ON ledger_conflicts (tenant, customer, id) WHERE customer != '';
