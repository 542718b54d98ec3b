-- Rules history: every state of every campaign, by the tenant catalog
-- version that made it, so that the hub can re-run a till's decision with
-- the rules version the till used (RulesAt). A row is kept while a till
-- may still report a sale made with it (Catalog.RulesRetention after it
-- was superseded); rules_floor is then the oldest version whose rules
-- are still complete.
CREATE TABLE catalog_campaign_history (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	version    INTEGER NOT NULL,       -- tenant catalog version of this state
	doc        TEXT NOT NULL,          -- rules.Campaign as JSON
	changed_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, version, id)
) STRICT;
CREATE INDEX catalog_campaign_history_id ON catalog_campaign_history (tenant, id, version);

ALTER TABLE catalog_tenants ADD COLUMN rules_floor INTEGER NOT NULL DEFAULT 0;

-- The states before this migration are unknown: history starts with the
-- current ones.
INSERT INTO catalog_campaign_history (tenant, id, version, doc, changed_at)
	SELECT tenant, id, version, doc, updated_at FROM catalog_campaigns;
UPDATE catalog_tenants SET rules_floor = (SELECT COALESCE(MAX(version), 0) FROM catalog_campaigns WHERE tenant = catalog_tenants.id);
