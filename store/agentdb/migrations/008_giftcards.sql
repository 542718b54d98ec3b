-- Gift cards this till sold or topped up (issue 12), one row per fact.
-- A card the till sold is known to it at once, before the hub's snapshot
-- lists it (issue = 1: its amount is the card's balance); a top-up raises
-- the card's balance here at once, until a snapshot whose Reflected
-- counts the fact carries the hub's figure. code is the card's key
-- (codes.Normalize), as in own_uses.
CREATE TABLE own_cards (
	seq      INTEGER PRIMARY KEY,
	code     TEXT    NOT NULL,
	campaign TEXT    NOT NULL,
	currency TEXT    NOT NULL,
	amount   INTEGER NOT NULL,
	issue    INTEGER NOT NULL
);
CREATE INDEX own_cards_code ON own_cards (code);
