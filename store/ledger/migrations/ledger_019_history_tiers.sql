-- Tier changes in the customer's history (issue 12, Deliver 7). The
-- activity page is one order across the journal and the tier changes: a
-- journal entry stands at its id, a tier change right after a journal
-- entry (its anchor). An upgrade's anchor is the fact that earned it (read
-- through ledger_journal_id); the review's changes have no fact, so
-- after_entry keeps max(id) of ledger_journal when the change was written
-- (one writer: commit order). No index: a customer's tier changes are few
-- and read through ledger_tier_history_customer.
ALTER TABLE ledger_tier_history ADD COLUMN after_entry INTEGER NOT NULL DEFAULT 0;
-- Rows from before: after the customer's last entry the hub had received
-- by then.
UPDATE ledger_tier_history SET after_entry = coalesce(
    (SELECT max(j.id) FROM ledger_journal j WHERE j.tenant = ledger_tier_history.tenant
        AND j.customer = ledger_tier_history.customer AND j.customer != '' AND j.received_at <= ledger_tier_history.at),
    0);
