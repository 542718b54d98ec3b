-- Everything the hub granted this till of each campaign, as the hub
-- counts it (protocol.Allowance.GrantedCount, GrantedAmount): a grant
-- whose answer was lost is added from the next answer or snapshot that
-- says more was granted. NULL: unknown (a row from before, or a hub that
-- does not say); -1: the dimension is unlimited.
ALTER TABLE allowances ADD COLUMN granted_count  INTEGER;
ALTER TABLE allowances ADD COLUMN granted_amount INTEGER;
