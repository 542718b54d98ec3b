-- Points as lots (issue 12): every earn is a lot that expires as the rules
-- say; burns take the lots that expire first; a scheduled expiry zeroes
-- what is due and journals it as 'points_expired'. A customer's balance
-- (ledger_customers.points) is always the sum of remaining over their
-- lots, and Verify checks it.

-- One row per earn (src_agent, src_seq: the fact that earned it), plus at
-- most one debt lot per customer (debt = 1, never expires): what a till's
-- burn took beyond the customer's points (points_overdrawn) or a rollback
-- of points already spent; later earns pay it off first. remaining goes
-- down with burns and expiry and up with give-backs; expired is what the
-- expiry took, in total. Times are Unix microseconds; expires_at 0: never.
CREATE TABLE ledger_points_lots (
    id         INTEGER PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    campaign   TEXT    NOT NULL DEFAULT '',
    amount     INTEGER NOT NULL,
    remaining  INTEGER NOT NULL,
    expired    INTEGER NOT NULL DEFAULT 0,
    earned_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0,
    src_agent  TEXT    NOT NULL DEFAULT '',
    src_seq    INTEGER,
    debt       INTEGER NOT NULL DEFAULT 0,
    voided     INTEGER NOT NULL DEFAULT 0 -- its earn was rolled back: give-backs go to the debt lot
);
-- Burns: a customer's live lots, soonest expiry first (0, never, last).
CREATE INDEX ledger_points_lots_customer ON ledger_points_lots (tenant, customer, expires_at) WHERE remaining > 0;
-- The expiry job: what is due, in expiry order.
CREATE INDEX ledger_points_lots_due ON ledger_points_lots (expires_at) WHERE remaining > 0 AND expires_at > 0;
-- A rollback of an earn finds its lot.
CREATE INDEX ledger_points_lots_src ON ledger_points_lots (tenant, src_agent, src_seq) WHERE src_seq IS NOT NULL;
-- The debt lot of a customer.
CREATE UNIQUE INDEX ledger_points_lots_debt ON ledger_points_lots (tenant, customer) WHERE debt = 1;
-- The lots listing of the customer API.
CREATE INDEX ledger_points_lots_list ON ledger_points_lots (tenant, customer, id);

-- What each burn (or rollback of an earn, or earn paying a debt) took from
-- which lot: a rollback of the burn gives exactly these back. (agent, seq)
-- is the journal entry that took them.
CREATE TABLE ledger_points_takes (
    tenant TEXT    NOT NULL,
    agent  TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    lot    INTEGER NOT NULL,
    points INTEGER NOT NULL
);
CREATE INDEX ledger_points_takes_entry ON ledger_points_takes (tenant, agent, seq);

-- A 'points_expired' journal entry names the lot it expired.
ALTER TABLE ledger_journal ADD COLUMN lot INTEGER;

-- Backfill: today's running balance of each customer becomes one lot that
-- never expires (a negative one, after an overdraw, the debt lot), so an
-- existing ledger migrates with every balance equal to its lots.
INSERT INTO ledger_points_lots (tenant, customer, amount, remaining, earned_at, expires_at, debt)
    SELECT tenant, customer, points, points, 0, 0, points < 0 FROM ledger_customers WHERE points != 0;
