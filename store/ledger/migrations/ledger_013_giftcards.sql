-- Gift card life (issue 12): what tills and the hub loaded onto a card by
-- top-ups (journal entries 'giftcard_topup', their load in the spend
-- column, sign 0). A card's balance is its catalog balance (the value it
-- was created or sold with) plus loaded, less spent. A sale
-- ('giftcard_issue') is journaled too; its value is the catalog balance
-- the hub gives the new card.
ALTER TABLE ledger_giftcards ADD COLUMN loaded INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER ledger_giftcards_useq_load AFTER UPDATE OF loaded ON ledger_giftcards WHEN NEW.loaded IS NOT OLD.loaded BEGIN
    INSERT INTO ledger_code_seq (tenant, seq) VALUES (NEW.tenant, 1)
        ON CONFLICT (tenant) DO UPDATE SET seq = seq + 1;
    UPDATE ledger_giftcards SET useq = (SELECT seq FROM ledger_code_seq WHERE tenant = NEW.tenant)
        WHERE tenant = NEW.tenant AND code = NEW.code;
END;
