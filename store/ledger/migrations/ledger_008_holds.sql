-- Online-first holds (hub/online Authorize): what a till decided with the
-- hub, counted by every later decision until the till's fact reaches the
-- ledger (its figure passes base + held) or the hold expires. Kept in the
-- database, so that a restarted hub, and every hub on this database, sees
-- them. A hold is never a record of the ledger: the till's fact is.
CREATE TABLE ledger_holds (
    tenant     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,  -- 'c': a code's uses and spending (a = code); 'u': a customer's uses of a campaign (a = customer, b = campaign); 'e': a customer's total in a capped period (a = customer, b = campaign NUL rule NUL period NUL start)
    a          TEXT    NOT NULL,
    b          TEXT    NOT NULL,
    owner      TEXT    NOT NULL,  -- agent/txn
    uses       INTEGER NOT NULL,
    spend      INTEGER NOT NULL,
    base_uses  INTEGER NOT NULL,  -- the ledger's figure when the hold was taken
    base_spent INTEGER NOT NULL,
    expires    INTEGER NOT NULL,  -- unix microseconds
    PRIMARY KEY (tenant, kind, a, b, owner)
) WITHOUT ROWID;
CREATE INDEX ledger_holds_owner ON ledger_holds (tenant, owner);
CREATE INDEX ledger_holds_expires ON ledger_holds (expires);
