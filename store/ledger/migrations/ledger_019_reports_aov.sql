-- Reports (issue 13): the purchase history by time, for the aov report
-- (orders of known customers with and without a reward per period). The
-- index carries what the report reads of each order, and its first fact's
-- till and transaction to find the order's redemptions
-- (ledger_journal_txn).
CREATE INDEX ledger_purchases_report ON ledger_purchases (tenant, at, currency, value, agent, txn);
