-- The till's own code uses and gift card spending, one row per fact, kept
-- until a snapshot's figures count them (the hub's watermark for this
-- agent passed them): what the till knows of a code is the hub's last
-- figure plus these rows beyond the figure's watermark (CodeFigure).
-- code_uses keeps the running totals (token serials have no hub figure).
CREATE TABLE own_uses (
	code  TEXT    NOT NULL,
	seq   INTEGER NOT NULL,
	uses  INTEGER NOT NULL,
	spent INTEGER NOT NULL,
	PRIMARY KEY (code, seq)
) WITHOUT ROWID;

-- reflected_wm: the watermark of the stored snapshot's figures (rows at or
-- below it are counted by the hub and may be pruned). own_pruned_to: the
-- highest seq pruned from own_uses; a decision made with figures older
-- than that cannot be checked exactly (ErrStaleFigure).
ALTER TABLE agent_state ADD COLUMN reflected_wm INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_state ADD COLUMN own_pruned_to INTEGER NOT NULL DEFAULT 0;

-- A database from before this table: its totals become one row at the
-- last seq assigned, counted on top of the hub's figures until the hub's
-- watermark passes that seq (an overcount, never an undercount).
INSERT INTO own_uses (code, seq, uses, spent)
	SELECT code, (SELECT next_seq - 1 FROM agent_state WHERE id = 1), uses, spent FROM code_uses
	WHERE (uses != 0 OR spent != 0) AND (SELECT next_seq FROM agent_state WHERE id = 1) > 1;
