-- The size of the last grant applied to each allowance: the agent asks
-- the hub for more, in the background, once what is left falls below a
-- fraction of it (the low-water mark). 0 when unknown.
ALTER TABLE allowances ADD COLUMN last_count  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE allowances ADD COLUMN last_amount INTEGER NOT NULL DEFAULT 0;
