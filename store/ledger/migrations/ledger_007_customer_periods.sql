-- Period caps on earning across orders (issue 12). An earn of a
-- period-capped earning rule names the rule and the period it counts in
-- (Redemption.Cap); the ledger keeps each customer's total per rule and
-- period, in the same transaction as the fact, so that every decision
-- reads it with one primary-key lookup, whatever the history.

-- Append-only, one row per earn fact that counts against a period (rule:
-- the earning rule; points: the earn's) and per redeem of a campaign limited
-- per customer and period (rule '', points 1): which total it went to, so
-- that a rollback takes exactly that back.
CREATE TABLE ledger_earn_periods (
    tenant   TEXT    NOT NULL,
    agent    TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    customer TEXT    NOT NULL,
    campaign TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    period   TEXT    NOT NULL,
    start    INTEGER NOT NULL, -- Unix seconds, the period's first instant
    points   INTEGER NOT NULL,
    PRIMARY KEY (tenant, agent, seq)
) WITHOUT ROWID;

-- Balance: points a customer earned from one capped rule in one period
-- (rule ''; redemptions of the campaign), net of rollbacks. Verify recomputes it from the journal and the rows above.
CREATE TABLE ledger_customer_periods (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    campaign TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    period   TEXT    NOT NULL,
    start    INTEGER NOT NULL,
    points   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, customer, campaign, rule, period, start)
) WITHOUT ROWID;
