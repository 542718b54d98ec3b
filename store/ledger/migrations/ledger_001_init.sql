-- The hub's ledger. The journal tables are append-only: rows are inserted,
-- never updated or deleted. The balance tables are derived from them in the
-- same transaction, and Ledger.Verify recomputes them from the journal.

-- One row per redemption fact (redeem, rollback, earn, burn: agent = the
-- agent that made it, seq its sequence number) and per allowance movement
-- (allowance_grant, allowance_return: seq is NULL).
CREATE TABLE ledger_journal (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    entry       TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    seq         INTEGER,
    store       TEXT    NOT NULL DEFAULT '',
    txn_id      TEXT    NOT NULL DEFAULT '',
    campaign    TEXT    NOT NULL DEFAULT '',
    code        TEXT    NOT NULL DEFAULT '',
    customer    TEXT    NOT NULL DEFAULT '',
    order_id    TEXT    NOT NULL DEFAULT '',
    currency    TEXT    NOT NULL DEFAULT '',
    discount    INTEGER NOT NULL DEFAULT 0,
    spend       INTEGER NOT NULL DEFAULT 0,
    points      INTEGER NOT NULL DEFAULT 0,
    order_total INTEGER NOT NULL DEFAULT 0,
    count       INTEGER NOT NULL DEFAULT 0, -- allowance entries: redemptions granted or returned
    hlc         INTEGER NOT NULL DEFAULT 0,
    offline     INTEGER NOT NULL DEFAULT 0,
    ref_agent   TEXT,
    ref_seq     INTEGER,
    snapshot    INTEGER NOT NULL DEFAULT 0,
    -- The effect this entry had on the count balances (+1 redeem, -1 a
    -- rollback that voided a redeem, 0 earn/burn or a repeated rollback) and
    -- on points (+1, -1 or 0). Decided once when the entry is applied, so
    -- that Verify recomputes balances as plain sums.
    sign        INTEGER NOT NULL DEFAULT 0,
    psign       INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL -- Unix microseconds, hub clock
);
-- (tenant, agent, seq) is a redemption's identity; NULL seqs (allowance
-- entries) are distinct, as SQL wants.
CREATE UNIQUE INDEX ledger_journal_id ON ledger_journal (tenant, agent, seq);
CREATE INDEX ledger_journal_code ON ledger_journal (tenant, code) WHERE code != '';
CREATE INDEX ledger_journal_customer ON ledger_journal (tenant, customer, campaign) WHERE customer != '';
CREATE INDEX ledger_journal_ref ON ledger_journal (tenant, ref_agent, ref_seq) WHERE ref_agent IS NOT NULL;

-- Conflicts: violations that offline operation made possible. Append-only.
CREATE TABLE ledger_conflicts (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    campaign    TEXT    NOT NULL DEFAULT '',
    code        TEXT    NOT NULL DEFAULT '',
    customer    TEXT    NOT NULL DEFAULT '',
    agent       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    other_agent TEXT,
    other_seq   INTEGER,
    detail      TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX ledger_conflicts_tenant ON ledger_conflicts (tenant, id);

-- Balances, kept in the same transaction as the journal.
CREATE TABLE ledger_campaigns (
    tenant      TEXT    NOT NULL,
    campaign    TEXT    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 0,
    discount    INTEGER NOT NULL DEFAULT 0,
    order_value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, campaign)
) WITHOUT ROWID;

CREATE TABLE ledger_codes (
    tenant TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    uses   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, code)
) WITHOUT ROWID;

-- What has been spent from each gift card; its balance is the initial value
-- (a catalog fact) minus spent.
CREATE TABLE ledger_giftcards (
    tenant TEXT    NOT NULL,
    code   TEXT    NOT NULL,
    spent  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, code)
) WITHOUT ROWID;

CREATE TABLE ledger_customers (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    points   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, customer)
) WITHOUT ROWID;

CREATE TABLE ledger_customer_campaigns (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    campaign TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, customer, campaign)
) WITHOUT ROWID;

-- Escrow: what each agent was granted, gave back and used of a campaign.
-- Outstanding = granted - returned - used (negative after an overrun).
CREATE TABLE ledger_allowances (
    tenant          TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    campaign        TEXT    NOT NULL,
    grants          INTEGER NOT NULL DEFAULT 0,
    granted_count   INTEGER NOT NULL DEFAULT 0,
    granted_amount  INTEGER NOT NULL DEFAULT 0,
    returned_count  INTEGER NOT NULL DEFAULT 0,
    returned_amount INTEGER NOT NULL DEFAULT 0,
    used_count      INTEGER NOT NULL DEFAULT 0,
    used_amount     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, agent, campaign)
) WITHOUT ROWID;
CREATE INDEX ledger_allowances_campaign ON ledger_allowances (tenant, campaign);

-- Sync state per agent: the contiguous watermark and the last heartbeat.
CREATE TABLE ledger_agents (
    tenant           TEXT    NOT NULL,
    agent            TEXT    NOT NULL,
    watermark        INTEGER NOT NULL DEFAULT 0,
    snapshot_version INTEGER NOT NULL DEFAULT 0,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    outbox_depth     INTEGER NOT NULL DEFAULT 0,
    hlc              INTEGER NOT NULL DEFAULT 0,
    seen_at          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, agent)
) WITHOUT ROWID;
