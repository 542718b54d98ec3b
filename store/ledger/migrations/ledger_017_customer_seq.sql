-- The customer-state change sequence (issue 10): one counter per tenant,
-- bumped by every change of a customer's tier (ledger_customer_tiers) or
-- segment memberships (ledger_customer_segments), and the position of
-- each customer's latest change. Customer state travels to the tills like
-- code uses (ledger_004_code_seq), not with the catalog version: a till
-- keeps the position its snapshot's tiers and segments were read at and
-- asks for the customers changed after it, a range scan of the
-- (tenant, cseq) index. Triggers keep it current whatever path writes.
CREATE TABLE ledger_customer_seq (
    tenant TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE ledger_customer_state (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    cseq     INTEGER NOT NULL,
    PRIMARY KEY (tenant, customer)
) WITHOUT ROWID;
CREATE INDEX ledger_customer_state_cseq ON ledger_customer_state (tenant, cseq);

-- Customers with state from before the sequence count as its first change.
INSERT INTO ledger_customer_state (tenant, customer, cseq)
    SELECT tenant, customer, 1 FROM ledger_customer_tiers
    UNION SELECT tenant, customer, 1 FROM ledger_customer_segments;
INSERT INTO ledger_customer_seq (tenant, seq) SELECT DISTINCT tenant, 1 FROM ledger_customer_state;

CREATE TRIGGER ledger_customer_tiers_cseq_ins AFTER INSERT ON ledger_customer_tiers BEGIN
    INSERT INTO ledger_customer_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    INSERT INTO ledger_customer_state (tenant, customer, cseq)
        VALUES (NEW.tenant, NEW.customer, (SELECT seq FROM ledger_customer_seq WHERE tenant = NEW.tenant))
        ON CONFLICT (tenant, customer) DO UPDATE SET cseq = excluded.cseq;
END;
CREATE TRIGGER ledger_customer_tiers_cseq_upd AFTER UPDATE OF tier ON ledger_customer_tiers WHEN NEW.tier IS NOT OLD.tier BEGIN
    INSERT INTO ledger_customer_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    INSERT INTO ledger_customer_state (tenant, customer, cseq)
        VALUES (NEW.tenant, NEW.customer, (SELECT seq FROM ledger_customer_seq WHERE tenant = NEW.tenant))
        ON CONFLICT (tenant, customer) DO UPDATE SET cseq = excluded.cseq;
END;
CREATE TRIGGER ledger_customer_tiers_cseq_del AFTER DELETE ON ledger_customer_tiers BEGIN
    INSERT INTO ledger_customer_seq (tenant, seq) VALUES (OLD.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    INSERT INTO ledger_customer_state (tenant, customer, cseq)
        VALUES (OLD.tenant, OLD.customer, (SELECT seq FROM ledger_customer_seq WHERE tenant = OLD.tenant))
        ON CONFLICT (tenant, customer) DO UPDATE SET cseq = excluded.cseq;
END;
CREATE TRIGGER ledger_customer_segments_cseq_ins AFTER INSERT ON ledger_customer_segments BEGIN
    INSERT INTO ledger_customer_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    INSERT INTO ledger_customer_state (tenant, customer, cseq)
        VALUES (NEW.tenant, NEW.customer, (SELECT seq FROM ledger_customer_seq WHERE tenant = NEW.tenant))
        ON CONFLICT (tenant, customer) DO UPDATE SET cseq = excluded.cseq;
END;
CREATE TRIGGER ledger_customer_segments_cseq_del AFTER DELETE ON ledger_customer_segments BEGIN
    INSERT INTO ledger_customer_seq (tenant, seq) VALUES (OLD.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    INSERT INTO ledger_customer_state (tenant, customer, cseq)
        VALUES (OLD.tenant, OLD.customer, (SELECT seq FROM ledger_customer_seq WHERE tenant = OLD.tenant))
        ON CONFLICT (tenant, customer) DO UPDATE SET cseq = excluded.cseq;
END;
