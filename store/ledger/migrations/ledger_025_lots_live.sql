-- One index of a customer's points lots instead of two (issue 10, the
-- online writer): every earn wrote an entry into each of
-- ledger_points_lots_customer (tenant, customer, expires_at) WHERE
-- remaining > 0 (the burns' order) and ledger_points_lots_customer_src
-- (tenant, customer, src_seq) (the rest: a rollback's lookup of its earn's
-- lot, the lots listing, the tier measure), two leaf pages at random
-- places. This one keys the lots by customer, then live or not, then
-- expiry: a burn seeks the live ones (remaining > 0) in expiry order as
-- before, and the other readers read the customer's lots whole, as they
-- did. A lot that runs out moves within its customer's entries.
-- The queries name the key as "(remaining > 0) = 1" (lots.go): SQLite
-- uses an index on an expression only for that expression itself.
CREATE INDEX ledger_points_lots_customer_live ON ledger_points_lots (tenant, customer, remaining > 0, expires_at);
DROP INDEX ledger_points_lots_customer;
DROP INDEX ledger_points_lots_customer_src;
