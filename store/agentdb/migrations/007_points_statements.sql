-- The till's own offline points burns against a points statement (issue
-- 12, protocol/token.Statement), one row per burn fact: the till spends at
-- most the statement's points less these rows (those not rolled back).
-- expires is the statement's expiry (Unix seconds): past it the rows serve
-- no decision and retention drops them.
CREATE TABLE points_statement_burns (
	serial   TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	customer TEXT    NOT NULL,
	points   INTEGER NOT NULL,
	expires  INTEGER NOT NULL,
	PRIMARY KEY (serial, seq)
) WITHOUT ROWID;
