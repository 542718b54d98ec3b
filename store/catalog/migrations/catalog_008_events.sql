-- The catalog's event log (issue 13): campaign changes and the kill switch
-- (campaign.stop), codes generated, imported or revoked, tier programmes.
-- Every such change writes its audit row in its own transaction, so a
-- trigger on catalog_audit writes the event in that same transaction,
-- without a second code path. Customer, key, agent and token actions are
-- left out (personal data and secrets stay in the audit). Same shape as
-- ledger_events; the webhook relay reads both by cursors of its own.
CREATE TABLE catalog_events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    salt   TEXT    NOT NULL DEFAULT (lower(hex(randomblob(6)))),
    tenant TEXT    NOT NULL,
    type   TEXT    NOT NULL,
    at     INTEGER NOT NULL, -- Unix microseconds, hub clock
    v      INTEGER NOT NULL DEFAULT 1,
    body   TEXT    NOT NULL
) STRICT;
CREATE INDEX catalog_events_at ON catalog_events (at);

CREATE TRIGGER catalog_audit_events AFTER INSERT ON catalog_audit
WHEN NEW.action IN ('campaign.create', 'campaign.update', 'campaign.start', 'campaign.stop',
                    'codes.generate', 'codes.import', 'code.revoke', 'tiers.set')
BEGIN
    INSERT INTO catalog_events (tenant, type, at, body) VALUES (NEW.tenant, NEW.action, NEW.at,
        json_object('target', NEW.target, 'actor', NEW.actor, 'version', NEW.version,
            'before', CASE WHEN NEW.action LIKE 'campaign.%' AND NEW.before IS NOT NULL THEN json(NEW.before) END,
            'after', CASE WHEN NEW.action LIKE 'campaign.%' OR NEW.action = 'tiers.set' THEN json(NEW.after) END));
END;
