-- A gift card's sale looks for an earlier sale of the same code
-- (applyLoad, giftcards.go): with no index on the journal's code since
-- ledger_002 it searched the tenant's whole journal (ledger_journal_id by
-- tenant), a read growing with history on a sale's path. A partial index
-- holds the sales alone (one entry per card sold, none for any other
-- fact, so the drains' other writes pay nothing); (tenant, code, id) gives
-- the first sale in id order without a sort.
CREATE INDEX ledger_journal_card_issue ON ledger_journal (tenant, code, id) WHERE entry = 'giftcard_issue';
