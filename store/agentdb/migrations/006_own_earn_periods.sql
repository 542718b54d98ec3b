-- The till's own earns of period-capped earning rules, one row per fact
-- (issue 12): what the customer earned here in a period. Online, the till
-- adds the rows the hub's figure does not count (outside its Reflected);
-- offline, all of them (the offline bound: at most one cap per till the
-- customer visits while the tills cannot reach the hub).
CREATE TABLE own_earn_periods (
	customer TEXT    NOT NULL,
	campaign TEXT    NOT NULL,
	rule     TEXT    NOT NULL,
	start    INTEGER NOT NULL,
	seq      INTEGER NOT NULL,
	points   INTEGER NOT NULL,
	PRIMARY KEY (customer, campaign, rule, start, seq)
) WITHOUT ROWID;
