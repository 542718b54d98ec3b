-- Small snapshot deltas applied on top of the stored snapshot (code uses
-- and spending, new codes, keys, envelope), as received, in order. The
-- agent appends one instead of rewriting the megabytes of the whole
-- snapshot for a few changed codes, and replays them over the snapshot at
-- start; a full snapshot saved clears them.
CREATE TABLE snapshot_deltas (
	seq  INTEGER PRIMARY KEY,
	body BLOB    NOT NULL
);
