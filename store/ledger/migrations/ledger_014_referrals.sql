-- Referrals (issue 12, referral programs; protocol/referrals.go). One row
-- per referee whose first qualifying purchase rewarded a referrer, written
-- in the transaction of that purchase's fact (the referee's redeem of the
-- referral code): an online basket's, or a till's at ingest. A rollback of
-- that fact takes the reward back and deletes the row; the journal keeps
-- both (entries referral_reward and referral_reversed, on the referrer).
CREATE TABLE ledger_referrals (
    tenant     TEXT    NOT NULL,
    referee    TEXT    NOT NULL,
    referrer   TEXT    NOT NULL,
    campaign   TEXT    NOT NULL, -- the referral campaign
    code       TEXT    NOT NULL, -- the referral code (normalized)
    agent      TEXT    NOT NULL, -- the referee's fact
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL, -- the sale's time, Unix microseconds
    points     INTEGER NOT NULL, -- the referrer's reward
    lot        INTEGER NOT NULL, -- the referrer's points lot (0: no points)
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, referee)
) WITHOUT ROWID;
CREATE INDEX ledger_referrals_referrer ON ledger_referrals (tenant, referrer, at);
CREATE UNIQUE INDEX ledger_referrals_fact ON ledger_referrals (tenant, agent, seq);
