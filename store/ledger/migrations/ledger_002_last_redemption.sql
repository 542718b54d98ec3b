-- The balance rows of codes, gift cards and customer campaigns remember the
-- last redemption that counted against them, the "other side" a conflict
-- names (code_reused, giftcard_overdrawn, customer_limit). It used to be
-- found by querying the journal; the partial indexes meant for that query
-- (WHERE code != '', WHERE customer != '') could not serve it with bound
-- parameters, so it scanned and sorted the tenant's journal, while every
-- redemption with a code or a customer paid for two index entries. With the
-- last redemption kept in the row, neither index has a reader left.
DROP INDEX ledger_journal_code;
DROP INDEX ledger_journal_customer;

-- ledger_codes: the last redeem that used the code (sign > 0; a redeem
-- voided on arrival by an earlier rollback has sign 0 and never used it).
ALTER TABLE ledger_codes ADD COLUMN last_agent TEXT;
ALTER TABLE ledger_codes ADD COLUMN last_seq INTEGER;
-- ledger_giftcards: the last redeem that spent from the card.
ALTER TABLE ledger_giftcards ADD COLUMN last_agent TEXT;
ALTER TABLE ledger_giftcards ADD COLUMN last_seq INTEGER;
-- ledger_customer_campaigns: the last redeem of the customer in the campaign.
ALTER TABLE ledger_customer_campaigns ADD COLUMN last_agent TEXT;
ALTER TABLE ledger_customer_campaigns ADD COLUMN last_seq INTEGER;

-- Backfill from the journal (a no-op on a new database).
UPDATE ledger_codes SET (last_agent, last_seq) = (SELECT j.agent, j.seq FROM ledger_journal j
    WHERE j.tenant = ledger_codes.tenant AND j.code = ledger_codes.code AND j.entry = 'redeem' AND j.sign > 0 AND j.seq IS NOT NULL
    ORDER BY j.id DESC LIMIT 1);
UPDATE ledger_giftcards SET (last_agent, last_seq) = (SELECT j.agent, j.seq FROM ledger_journal j
    WHERE j.tenant = ledger_giftcards.tenant AND j.code = ledger_giftcards.code AND j.spend > 0 AND j.sign > 0 AND j.seq IS NOT NULL
    ORDER BY j.id DESC LIMIT 1);
UPDATE ledger_customer_campaigns SET (last_agent, last_seq) = (SELECT j.agent, j.seq FROM ledger_journal j
    WHERE j.tenant = ledger_customer_campaigns.tenant AND j.customer = ledger_customer_campaigns.customer
      AND j.campaign = ledger_customer_campaigns.campaign AND j.sign > 0 AND j.seq IS NOT NULL
    ORDER BY j.id DESC LIMIT 1);
