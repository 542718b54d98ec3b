-- The code-use change sequence: one counter per tenant, bumped by every
-- change of a code's uses or a gift card's spending, and the position of
-- each code's latest change. Tills keep the position their snapshot's
-- code states were read at and ask for the codes changed after it
-- (CodeChanges): a range scan of the (tenant, useq) index, so a delta
-- costs the changes since, never every code ever used. Triggers keep it
-- current whatever path writes the balances (ingest, online, rollback).
CREATE TABLE ledger_code_seq (
    tenant TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE ledger_codes ADD COLUMN useq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger_giftcards ADD COLUMN useq INTEGER NOT NULL DEFAULT 0;
-- Rows from before the sequence count as its first change (position 1),
-- so that an agent at position 0 hears of them.
UPDATE ledger_codes SET useq = 1;
UPDATE ledger_giftcards SET useq = 1;
INSERT INTO ledger_code_seq (tenant, seq)
    SELECT tenant, 1 FROM ledger_codes UNION SELECT tenant, 1 FROM ledger_giftcards;
CREATE INDEX ledger_codes_useq ON ledger_codes (tenant, useq);
CREATE INDEX ledger_giftcards_useq ON ledger_giftcards (tenant, useq);

CREATE TRIGGER ledger_codes_useq_ins AFTER INSERT ON ledger_codes BEGIN
    INSERT INTO ledger_code_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    UPDATE ledger_codes SET useq = (SELECT seq FROM ledger_code_seq WHERE tenant = NEW.tenant)
        WHERE tenant = NEW.tenant AND code = NEW.code;
END;
CREATE TRIGGER ledger_codes_useq_upd AFTER UPDATE OF uses ON ledger_codes WHEN NEW.uses IS NOT OLD.uses BEGIN
    INSERT INTO ledger_code_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    UPDATE ledger_codes SET useq = (SELECT seq FROM ledger_code_seq WHERE tenant = NEW.tenant)
        WHERE tenant = NEW.tenant AND code = NEW.code;
END;
CREATE TRIGGER ledger_giftcards_useq_ins AFTER INSERT ON ledger_giftcards BEGIN
    INSERT INTO ledger_code_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    UPDATE ledger_giftcards SET useq = (SELECT seq FROM ledger_code_seq WHERE tenant = NEW.tenant)
        WHERE tenant = NEW.tenant AND code = NEW.code;
END;
CREATE TRIGGER ledger_giftcards_useq_upd AFTER UPDATE OF spent ON ledger_giftcards WHEN NEW.spent IS NOT OLD.spent BEGIN
    INSERT INTO ledger_code_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    UPDATE ledger_giftcards SET useq = (SELECT seq FROM ledger_code_seq WHERE tenant = NEW.tenant)
        WHERE tenant = NEW.tenant AND code = NEW.code;
END;
