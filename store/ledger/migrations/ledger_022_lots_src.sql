-- Fewer B-trees per earn (issue 10, the fleet's writer): every earn wrote
-- one entry into each of ledger_points_lots_src (tenant, src_agent,
-- src_seq) and ledger_points_lots_list (tenant, customer, id), two pages
-- of two trees at random places. The only reader of the first is a
-- rollback of an earn, which knows the earn's customer (it reads it from
-- the journal, signs in apply.go); the readers of the second want a
-- customer's lots in any order (the lots listing sorts by expiry, the
-- tier measure sums). One index by customer and source seq serves both:
-- the rollback's lookup is a seek in the customer's lots.
DROP INDEX ledger_points_lots_src;
DROP INDEX ledger_points_lots_list;
CREATE INDEX ledger_points_lots_customer_src ON ledger_points_lots (tenant, customer, src_seq);
