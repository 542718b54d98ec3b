-- A customer's live points lots in the order a burn reaches them (issue
-- 10, the online writer; lots.go): lots that expire, soonest first (those
-- already due among them), then lots that never expire (expires_at 0), by
-- id. ledger_025's key ordered the never-expiring ones first, so a burn
-- read the customer's live lots in three queries (the due ones to expire,
-- the expiring ones, then the never-expiring ones); in this order one
-- range read of the key serves the due lots' expiry and the burn's takes
-- together, and stops at what the burn needs. The other readers read the
-- customer's lots by the key's prefix, as before.
-- The queries name the key as "(remaining > 0) = 1" and order by
-- "expires_at = 0": SQLite uses an index on an expression only for that
-- expression itself.
DROP INDEX ledger_points_lots_customer_live;
CREATE INDEX ledger_points_lots_customer_live ON ledger_points_lots (tenant, customer, remaining > 0, expires_at = 0, expires_at);
