-- Distributions (issue 13): a campaign's codes or tokens published to a
-- list of customers or to a segment, for a mail merge or a print shop.
-- A publish records the recipients with no code yet (code IS NULL); the
-- hub's distributor fills them in chunks, one transaction each, so a
-- crash leaves whole chunks and the rest still pending, and a restart
-- resumes. Publishing again adds only the customers not in it yet.
CREATE TABLE catalog_distributions (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	campaign   TEXT NOT NULL,
	kind       TEXT NOT NULL,               -- 'code' or 'token'
	segment    TEXT NOT NULL DEFAULT '',    -- the last segment published to it
	state      TEXT NOT NULL,               -- 'running', 'done', 'failed'
	total      INTEGER NOT NULL,            -- recipients
	done       INTEGER NOT NULL,            -- recipients with a code
	error      TEXT NOT NULL DEFAULT '',
	expires_at INTEGER,                     -- tokens: their expiry; NULL = the default TTL
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id),
	FOREIGN KEY (tenant, campaign) REFERENCES catalog_campaigns (tenant, id)
) STRICT;
CREATE INDEX catalog_distributions_state ON catalog_distributions (state) WHERE state = 'running';

-- One row per recipient: n is its place in the distribution (the order
-- published, the export's order); code is the printed code or the token's
-- serial and text what is printed and encoded in the QR code. at is when
-- the code was made (Unix microseconds), for the codes distributed per
-- campaign in a time range (DistributedCodes, the reports' redemption rate).
CREATE TABLE catalog_distribution_items (
	tenant       TEXT NOT NULL,
	distribution TEXT NOT NULL,
	n            INTEGER NOT NULL,
	customer     TEXT NOT NULL,
	campaign     TEXT NOT NULL,
	code         TEXT,
	text         TEXT,
	at           INTEGER,
	PRIMARY KEY (tenant, distribution, n),
	UNIQUE (tenant, distribution, customer)
) STRICT;
CREATE INDEX catalog_distribution_items_pending ON catalog_distribution_items (tenant, distribution, n) WHERE code IS NULL;
CREATE INDEX catalog_distribution_items_campaign ON catalog_distribution_items (tenant, campaign, at) WHERE code IS NOT NULL;
