-- Tier programmes (issue 12, "tiers with a life"): one per tenant, a JSON
-- protocol/tiers.Program. The ledger reads it in the transaction of each
-- earning fact and of the downgrade review.
CREATE TABLE catalog_tier_programs (
	tenant     TEXT    NOT NULL PRIMARY KEY REFERENCES catalog_tenants (id),
	program    TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- A customer's tier as the ledger decided it reaches the tills in the
-- snapshot (key 19): tier_version is the tenant's catalog version when
-- the ledger last set it (0: never), so a delta lists "tier_version > since".
ALTER TABLE catalog_customers ADD COLUMN tier_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX catalog_customers_tier_version ON catalog_customers (tenant, tier_version) WHERE tier_version > 0;
