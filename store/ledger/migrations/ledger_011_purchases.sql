-- Purchase history per customer (issue 12, segments from behaviour). Every
-- order of a known customer that reaches the hub as a fact (a till's sale,
-- an online basket) is one row, written in the same transaction as its
-- first fact; the aggregates beside it are what a segment rule reads, so
-- that a decision costs a bounded number of indexed lookups, never a scan
-- of the whole history.

-- One row per order: (store, txn) is the till's or the online channel's
-- transaction; value is the order subtotal (Redemption.OrderTot), at the
-- moment of the sale (Unix microseconds).
CREATE TABLE ledger_purchases (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    store    TEXT    NOT NULL,
    txn      TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    value    INTEGER NOT NULL,
    currency TEXT    NOT NULL DEFAULT '',
    agent    TEXT    NOT NULL, -- the first fact's agent and seq
    seq      INTEGER NOT NULL,
    PRIMARY KEY (tenant, customer, store, txn)
) WITHOUT ROWID;
CREATE INDEX ledger_purchases_at ON ledger_purchases (tenant, customer, at);

-- Spend per customer and UTC day (day = Unix days): "spent X in the last N
-- days" sums at most N+1 rows, plus the purchases of the edge day.
CREATE TABLE ledger_purchase_days (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    day      INTEGER NOT NULL,
    value    INTEGER NOT NULL,
    orders   INTEGER NOT NULL,
    PRIMARY KEY (tenant, customer, day)
) WITHOUT ROWID;

-- First and last purchase per customer and store; the row with store ''
-- is the customer's overall first and last purchase.
CREATE TABLE ledger_purchase_stores (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    store    TEXT    NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    orders   INTEGER NOT NULL,
    PRIMARY KEY (tenant, customer, store)
) WITHOUT ROWID;

-- The segments each customer is in, as last computed (on each of its facts,
-- and by the periodic run for time-based rules): what snapshots and tokens
-- carry. since: Unix microseconds the customer entered the segment.
CREATE TABLE ledger_customer_segments (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    segment  TEXT    NOT NULL,
    since    INTEGER NOT NULL,
    PRIMARY KEY (tenant, customer, segment)
) WITHOUT ROWID;
CREATE INDEX ledger_customer_segments_seg ON ledger_customer_segments (tenant, segment, customer);
