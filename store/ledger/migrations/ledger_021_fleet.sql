-- What every agent holds of a campaign's budget, summed (issue 10, the
-- fleet): the escrow check of an allowance grant and of an online
-- redemption needs the sum over the campaign's agents of each one's
-- outstanding allowance (granted - returned - used, at least 0). Summing
-- ledger_allowances for it read every till's row, so 10,000 tills each
-- asking for an allowance read 10,000 rows each (a fleet of N tills cost
-- N^2 rows). Triggers keep the sum whatever path writes an allowance;
-- `hub verify` recomputes it.
CREATE TABLE ledger_allowance_totals (
    tenant             TEXT    NOT NULL,
    campaign           TEXT    NOT NULL,
    outstanding_count  INTEGER NOT NULL DEFAULT 0,
    outstanding_amount INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, campaign)
) WITHOUT ROWID;

INSERT INTO ledger_allowance_totals (tenant, campaign, outstanding_count, outstanding_amount)
    SELECT tenant, campaign, SUM(MAX(0, granted_count - returned_count - used_count)),
           SUM(MAX(0, granted_amount - returned_amount - used_amount))
    FROM ledger_allowances GROUP BY tenant, campaign;

CREATE TRIGGER ledger_allowance_totals_ins AFTER INSERT ON ledger_allowances BEGIN
    INSERT INTO ledger_allowance_totals (tenant, campaign, outstanding_count, outstanding_amount)
        VALUES (NEW.tenant, NEW.campaign, MAX(0, NEW.granted_count - NEW.returned_count - NEW.used_count),
                MAX(0, NEW.granted_amount - NEW.returned_amount - NEW.used_amount))
        ON CONFLICT (tenant, campaign) DO UPDATE SET
            outstanding_count = outstanding_count + excluded.outstanding_count,
            outstanding_amount = outstanding_amount + excluded.outstanding_amount;
END;

CREATE TRIGGER ledger_allowance_totals_del AFTER DELETE ON ledger_allowances BEGIN
    UPDATE ledger_allowance_totals SET
        outstanding_count = outstanding_count - MAX(0, OLD.granted_count - OLD.returned_count - OLD.used_count),
        outstanding_amount = outstanding_amount - MAX(0, OLD.granted_amount - OLD.returned_amount - OLD.used_amount)
    WHERE tenant = OLD.tenant AND campaign = OLD.campaign;
END;

-- An update moves the sum by the difference (one row written); one that
-- changed the key itself, which nothing does, as a delete and an insert.
CREATE TRIGGER ledger_allowance_totals_upd AFTER UPDATE ON ledger_allowances
WHEN NEW.tenant = OLD.tenant AND NEW.campaign = OLD.campaign BEGIN
    UPDATE ledger_allowance_totals SET
        outstanding_count = outstanding_count + MAX(0, NEW.granted_count - NEW.returned_count - NEW.used_count)
                                              - MAX(0, OLD.granted_count - OLD.returned_count - OLD.used_count),
        outstanding_amount = outstanding_amount + MAX(0, NEW.granted_amount - NEW.returned_amount - NEW.used_amount)
                                                - MAX(0, OLD.granted_amount - OLD.returned_amount - OLD.used_amount)
    WHERE tenant = NEW.tenant AND campaign = NEW.campaign;
END;

CREATE TRIGGER ledger_allowance_totals_rekey AFTER UPDATE ON ledger_allowances
WHEN NEW.tenant IS NOT OLD.tenant OR NEW.campaign IS NOT OLD.campaign BEGIN
    UPDATE ledger_allowance_totals SET
        outstanding_count = outstanding_count - MAX(0, OLD.granted_count - OLD.returned_count - OLD.used_count),
        outstanding_amount = outstanding_amount - MAX(0, OLD.granted_amount - OLD.returned_amount - OLD.used_amount)
    WHERE tenant = OLD.tenant AND campaign = OLD.campaign;
    INSERT INTO ledger_allowance_totals (tenant, campaign, outstanding_count, outstanding_amount)
        VALUES (NEW.tenant, NEW.campaign, MAX(0, NEW.granted_count - NEW.returned_count - NEW.used_count),
                MAX(0, NEW.granted_amount - NEW.returned_amount - NEW.used_amount))
        ON CONFLICT (tenant, campaign) DO UPDATE SET
            outstanding_count = outstanding_count + excluded.outstanding_count,
            outstanding_amount = outstanding_amount + excluded.outstanding_amount;
END;
