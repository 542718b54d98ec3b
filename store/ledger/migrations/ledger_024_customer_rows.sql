-- A customer's state in one clustered table (issue 10, the online
-- writer). An online basket wrote its customer's points, per-campaign
-- counts, purchase, purchase store and day into five tables and one more
-- index, each keyed by the customer first: six B-trees, each a leaf page
-- of its own at a random place in every commit (a WAL frame each, and
-- its write and checksum). Here they are rows of one WITHOUT ROWID table
-- keyed by (tenant, customer, kind, ...): a customer's rows are
-- adjacent, and a basket dirties one or two leaf pages for all of them.
-- ledger_purchases_at (tenant, customer, at) goes: a customer's
-- purchases are now a range of this table, read whole where a time
-- window is asked (the spend rules' edge days, the purchases listing).
--
-- The old tables are views of the same names and columns, so that
-- readers (reports, Verify, the customer API) read them as before; the
-- writers (rows.go, state.go, purchases.go, lots.go) write this table.
-- A view takes plain INSERTs (its INSTEAD OF trigger), never an upsert.
--
-- kind  what            k1        k2    n1        n2        n3      s1          s2
-- 0     points balance  ''        ''    points
-- 1     campaign count  campaign  ''    count     last_seq          last_agent
-- 2     purchase store  store     ''    first_at  last_at   orders
-- 3     purchase day    ''        day   value               orders
-- 4     purchase        store     txn   at        value     seq     currency    agent
--
-- k2 has no declared type (no affinity), so a txn id stays text and a
-- day an integer.
CREATE TABLE ledger_customer_rows (
    tenant   TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    kind     INTEGER NOT NULL,
    k1       TEXT    NOT NULL DEFAULT '',
    k2               NOT NULL DEFAULT '',
    n1       INTEGER NOT NULL DEFAULT 0,
    n2       INTEGER,
    n3       INTEGER NOT NULL DEFAULT 0,
    s1       TEXT,
    s2       TEXT,
    PRIMARY KEY (tenant, customer, kind, k1, k2)
) WITHOUT ROWID;

INSERT INTO ledger_customer_rows (tenant, customer, kind, n1)
    SELECT tenant, customer, 0, points FROM ledger_customers;
INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, n2, s1)
    SELECT tenant, customer, 1, campaign, count, last_seq, last_agent FROM ledger_customer_campaigns;
INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, n2, n3)
    SELECT tenant, customer, 2, store, first_at, last_at, orders FROM ledger_purchase_stores;
INSERT INTO ledger_customer_rows (tenant, customer, kind, k2, n1, n3)
    SELECT tenant, customer, 3, day, value, orders FROM ledger_purchase_days;
INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, k2, n1, n2, n3, s1, s2)
    SELECT tenant, customer, 4, store, txn, at, value, seq, currency, agent FROM ledger_purchases;

DROP TABLE ledger_customers;
DROP TABLE ledger_customer_campaigns;
DROP TABLE ledger_purchase_stores;
DROP TABLE ledger_purchase_days;
DROP TABLE ledger_purchases;

CREATE VIEW ledger_customers (tenant, customer, points) AS
    SELECT tenant, customer, n1 FROM ledger_customer_rows WHERE kind = 0;
CREATE VIEW ledger_customer_campaigns (tenant, customer, campaign, count, last_agent, last_seq) AS
    SELECT tenant, customer, k1, n1, s1, n2 FROM ledger_customer_rows WHERE kind = 1;
CREATE VIEW ledger_purchase_stores (tenant, customer, store, first_at, last_at, orders) AS
    SELECT tenant, customer, k1, n1, n2, n3 FROM ledger_customer_rows WHERE kind = 2;
CREATE VIEW ledger_purchase_days (tenant, customer, day, value, orders) AS
    SELECT tenant, customer, k2, n1, n3 FROM ledger_customer_rows WHERE kind = 3;
CREATE VIEW ledger_purchases (tenant, customer, store, txn, at, value, currency, agent, seq) AS
    SELECT tenant, customer, k1, k2, n1, n2, s1, s2, n3 FROM ledger_customer_rows WHERE kind = 4;

-- The average-order-value report's index (ledger_019_reports_aov.sql),
-- the purchases' only index: by time, so appended to.
CREATE INDEX ledger_purchases_report ON ledger_customer_rows (tenant, n1, s1, n2, s2, k2) WHERE kind = 4;

CREATE TRIGGER ledger_customers_insert INSTEAD OF INSERT ON ledger_customers BEGIN
    INSERT INTO ledger_customer_rows (tenant, customer, kind, n1) VALUES (NEW.tenant, NEW.customer, 0, COALESCE(NEW.points, 0));
END;
CREATE TRIGGER ledger_customer_campaigns_insert INSTEAD OF INSERT ON ledger_customer_campaigns BEGIN
    INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, n2, s1)
        VALUES (NEW.tenant, NEW.customer, 1, NEW.campaign, COALESCE(NEW.count, 0), NEW.last_seq, NEW.last_agent);
END;
CREATE TRIGGER ledger_purchase_stores_insert INSTEAD OF INSERT ON ledger_purchase_stores BEGIN
    INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, n2, n3)
        VALUES (NEW.tenant, NEW.customer, 2, NEW.store, NEW.first_at, NEW.last_at, NEW.orders);
END;
CREATE TRIGGER ledger_purchase_days_insert INSTEAD OF INSERT ON ledger_purchase_days BEGIN
    INSERT INTO ledger_customer_rows (tenant, customer, kind, k2, n1, n3) VALUES (NEW.tenant, NEW.customer, 3, NEW.day, NEW.value, NEW.orders);
END;
CREATE TRIGGER ledger_purchases_insert INSTEAD OF INSERT ON ledger_purchases BEGIN
    INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, k2, n1, n2, n3, s1, s2)
        VALUES (NEW.tenant, NEW.customer, 4, NEW.store, NEW.txn, NEW.at, NEW.value, NEW.seq, COALESCE(NEW.currency, ''), NEW.agent);
END;
