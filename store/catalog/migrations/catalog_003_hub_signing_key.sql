-- The hub's own Ed25519 key, which signs every message the hub sends down
-- to agents (protocol.SignDown). One row, created on first start; every
-- hub sharing this database signs with it, so agents pin one public key.
CREATE TABLE catalog_hub_key (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	public     BLOB NOT NULL,
	private    BLOB NOT NULL,      -- the 32-byte Ed25519 seed
	created_at INTEGER NOT NULL
) STRICT;
