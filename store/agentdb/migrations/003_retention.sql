-- Pruning idempotency records by age (Prune) needs their creation time
-- indexed; redemptions are pruned by seq, which grows with their HLC.
CREATE INDEX txns_created ON txns (created_ms);
