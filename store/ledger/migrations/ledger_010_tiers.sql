-- Tiers with a life (issue 12). A customer's current tier as the tenant's
-- programme (catalog_tier_programs) decided it: raised in the transaction
-- of the fact that qualifies, kept until valid_until, reviewed at
-- review_at (valid_until plus the grace period) by the downgrade job.
-- What qualifies is read from the lots (points earned) or the journal
-- (spend) over the programme's window: no other total is kept.
-- Times are Unix microseconds.
CREATE TABLE ledger_customer_tiers (
    tenant      TEXT    NOT NULL,
    customer    TEXT    NOT NULL,
    tier        TEXT    NOT NULL,
    since       INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    review_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant, customer)
) WITHOUT ROWID;
-- The downgrade job: what is due for review.
CREATE INDEX ledger_customer_tiers_review ON ledger_customer_tiers (review_at);

-- Every change of a customer's tier: when, from, to, why ('upgrade',
-- 'downgrade'), and the fact that caused an upgrade.
CREATE TABLE ledger_tier_history (
    id        INTEGER PRIMARY KEY,
    tenant    TEXT    NOT NULL,
    customer  TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    from_tier TEXT    NOT NULL,
    to_tier   TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    src_agent TEXT    NOT NULL DEFAULT '',
    src_seq   INTEGER
);
CREATE INDEX ledger_tier_history_customer ON ledger_tier_history (tenant, customer, id);
