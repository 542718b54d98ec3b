-- Reports (issue 13): a tenant's facts by the time they happened. A fact's
-- HLC is its time (ms<<16 | logical), so a range of time is a range of
-- hlc; allowance entries (seq NULL, hlc 0) are in no range. The
-- index carries the columns the campaign, store and till reports sum, so
-- a report reads the index alone and never the table; id after hlc gives the
-- export its (hlc, id) order.
CREATE INDEX ledger_journal_report ON ledger_journal (tenant, hlc, id, campaign, store, agent, currency, entry, sign, psign, discount, order_total, points, offline);
-- Conflicts by the time they were recorded.
CREATE INDEX ledger_conflicts_at ON ledger_conflicts (tenant, created_at, kind);
