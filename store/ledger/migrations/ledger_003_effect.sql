-- A till's facts by transaction, for the re-derivation's check that a
-- transaction reports each campaign's effect once (effect_mismatch).
CREATE INDEX ledger_journal_txn ON ledger_journal (tenant, agent, txn_id);
