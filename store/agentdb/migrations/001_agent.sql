-- The agent's durable state. One row of agent_state; every counter that
-- must survive a crash (next sequence number, HLC, hub watermark) lives
-- there and is updated in the same transaction as the facts it numbers.
CREATE TABLE agent_state (
	id               INTEGER PRIMARY KEY CHECK (id = 1),
	next_seq         INTEGER NOT NULL DEFAULT 1,
	hlc              INTEGER NOT NULL DEFAULT 0,
	acked_watermark  INTEGER NOT NULL DEFAULT 0,
	acked_at_ms      INTEGER NOT NULL DEFAULT 0,
	synced_at_ms     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO agent_state (id) VALUES (1);

-- The hub's last snapshot as fetched (merged to full when a delta came).
-- Its own table: the body is megabytes, and agent_state is rewritten on
-- every commit.
CREATE TABLE snapshot (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL,
	etag    TEXT    NOT NULL,
	at_ms   INTEGER NOT NULL,
	body    BLOB    NOT NULL
);

-- One row per POS request that changed something: the idempotency record.
-- result is the exact response body, replayed on a retry.
CREATE TABLE txns (
	op         TEXT    NOT NULL,
	txn_id     TEXT    NOT NULL,
	req_hash   BLOB    NOT NULL,
	result     BLOB    NOT NULL,
	created_ms INTEGER NOT NULL,
	PRIMARY KEY (op, txn_id)
) WITHOUT ROWID;

-- Every fact the agent has recorded, kept after the hub acknowledged it so
-- that rollbacks and retries still find it.
CREATE TABLE redemptions (
	seq       INTEGER PRIMARY KEY,
	op        TEXT    NOT NULL,
	txn_id    TEXT    NOT NULL,
	kind      INTEGER NOT NULL,
	campaign  TEXT    NOT NULL DEFAULT '',
	code      TEXT    NOT NULL DEFAULT '',
	hlc       INTEGER NOT NULL,
	voided_by INTEGER,
	body      BLOB    NOT NULL
);
CREATE INDEX redemptions_txn ON redemptions (op, txn_id);

-- Facts not yet acknowledged by the hub. risk is the offline exposure the
-- fact adds to the offline risk envelope (0 when none).
CREATE TABLE outbox (
	seq      INTEGER PRIMARY KEY,
	campaign TEXT    NOT NULL DEFAULT '',
	risk     INTEGER NOT NULL DEFAULT 0,
	body     BLOB    NOT NULL
);
CREATE INDEX outbox_risk ON outbox (campaign) WHERE risk > 0;

-- The agent's escrowed slice of each limited campaign budget. -1 means
-- unlimited for that dimension.
CREATE TABLE allowances (
	campaign    TEXT    PRIMARY KEY,
	grant_no    INTEGER NOT NULL,
	count_left  INTEGER NOT NULL,
	amount_left INTEGER NOT NULL,
	currency    TEXT    NOT NULL DEFAULT '',
	expires_us  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Local uses of limited codes (single-use vouchers, token serials) and
-- local spend of gift cards, on top of what the snapshot says the hub knew.
CREATE TABLE code_uses (
	code  TEXT    PRIMARY KEY,
	uses  INTEGER NOT NULL DEFAULT 0,
	spent INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
