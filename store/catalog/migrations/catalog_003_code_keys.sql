-- Each tenant's key for the keyed hashes of codes in agent snapshots
-- (snapshot.HashCode): snapshots list gift card numbers and single-use
-- codes by HMAC-SHA256 under this key, not in clear. CreateTenant makes it
-- from crypto/rand; tenants created before this migration get one from
-- SQLite's randomblob (a CSPRNG seeded by the operating system).
CREATE TABLE catalog_code_keys (
	tenant TEXT PRIMARY KEY REFERENCES catalog_tenants (id),
	key    BLOB NOT NULL
) STRICT;

INSERT INTO catalog_code_keys (tenant, key) SELECT id, randomblob(32) FROM catalog_tenants;
