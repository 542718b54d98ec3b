-- The points a tenant's customers hold, in all: the balances report's
-- "points outstanding". Summing ledger_customers (kind 0 of
-- ledger_customer_rows, ledger_024) read every row of every customer of
-- the tenant (purchases, days, stores and counts too), a cost that grew
-- with the history. Triggers keep this one row a tenant with every
-- change of a customer's balance, whoever writes it (the online writer's
-- and the drains' upserts, the expiry job, an insert through the view);
-- Verify checks it against the customers' sum.
CREATE TABLE ledger_points_totals (
    tenant TEXT    NOT NULL PRIMARY KEY,
    points INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO ledger_points_totals (tenant, points)
    SELECT tenant, SUM(n1) FROM ledger_customer_rows WHERE kind = 0 GROUP BY tenant;

CREATE TRIGGER ledger_points_totals_insert AFTER INSERT ON ledger_customer_rows
    WHEN NEW.kind = 0 AND NEW.n1 != 0
BEGIN
    INSERT INTO ledger_points_totals (tenant, points) VALUES (NEW.tenant, NEW.n1)
        ON CONFLICT (tenant) DO UPDATE SET points = points + excluded.points;
END;

CREATE TRIGGER ledger_points_totals_update AFTER UPDATE OF n1 ON ledger_customer_rows
    WHEN NEW.kind = 0 AND NEW.n1 IS NOT OLD.n1
BEGIN
    INSERT INTO ledger_points_totals (tenant, points) VALUES (NEW.tenant, NEW.n1 - OLD.n1)
        ON CONFLICT (tenant) DO UPDATE SET points = points + excluded.points;
END;

CREATE TRIGGER ledger_points_totals_delete AFTER DELETE ON ledger_customer_rows
    WHEN OLD.kind = 0 AND OLD.n1 != 0
BEGIN
    INSERT INTO ledger_points_totals (tenant, points) VALUES (OLD.tenant, -OLD.n1)
        ON CONFLICT (tenant) DO UPDATE SET points = points + excluded.points;
END;
