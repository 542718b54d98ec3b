-- Segment definitions per tenant (issue 12, segments from behaviour): a
-- segment is a set of rules over a customer's purchase history (kept in the
-- ledger, ledger_011) and attributes; the hub computes who is in it.
CREATE TABLE catalog_segments (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	doc        TEXT NOT NULL,          -- segment.Definition as JSON
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT;
