-- Facts the hub could not apply (they fail protocol.Redemption.ValidateFrom
-- or did not decode, yet name their seq): kept with the bytes as received,
-- listed by the API, and counted toward the agent's watermark so that the
-- Ack covers them and one bad fact never holds back the till's others.
-- Append-only. A (tenant, agent, seq) is either here or in ledger_journal,
-- never both: the first to arrive is kept, repeats are no-ops.
CREATE TABLE ledger_quarantine (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL, -- the sending agent's tenant (its topic)
    agent       TEXT    NOT NULL, -- the sending agent
    seq         INTEGER NOT NULL, -- the seq the fact names
    code        TEXT    NOT NULL, -- reason code (invalid_input, forbidden, message_malformed)
    field       TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL,
    raw         BLOB    NOT NULL, -- the fact's CBOR as received
    received_at INTEGER NOT NULL  -- Unix microseconds, hub clock
);
CREATE UNIQUE INDEX ledger_quarantine_id ON ledger_quarantine (tenant, agent, seq);
CREATE INDEX ledger_quarantine_tenant ON ledger_quarantine (tenant, id);
