-- Allowance grants by the till's request id: a retry of a request whose
-- answer was lost gets the same grant back, never a second one.
CREATE TABLE ledger_allowance_requests (
    tenant         TEXT    NOT NULL,
    agent          TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    campaign       TEXT    NOT NULL,
    grant_no       INTEGER NOT NULL,
    count          INTEGER NOT NULL,
    amount         INTEGER NOT NULL,
    granted_count  INTEGER NOT NULL,
    granted_amount INTEGER NOT NULL,
    currency       TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, agent, request_id)
) WITHOUT ROWID;
