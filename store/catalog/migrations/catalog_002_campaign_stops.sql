-- Every interval a campaign was stopped in (a draft counts as stopped from
-- its creation), so that an offline redemption made in a stopped window is
-- flagged after_kill_switch even when it syncs after a restart. Appended on
-- stop (or create as draft/stopped), closed (started_at set) on start.
CREATE TABLE catalog_campaign_stops (
	tenant     TEXT NOT NULL,
	campaign   TEXT NOT NULL,
	stopped_at INTEGER NOT NULL,
	started_at INTEGER,            -- NULL while the interval is open
	PRIMARY KEY (tenant, campaign, stopped_at)
) STRICT;

-- Campaigns stopped or still drafts when this migration runs.
INSERT INTO catalog_campaign_stops (tenant, campaign, stopped_at)
	SELECT tenant, id, stopped_at FROM catalog_campaigns WHERE status = 'stopped' AND stopped_at IS NOT NULL;
INSERT INTO catalog_campaign_stops (tenant, campaign, stopped_at)
	SELECT tenant, id, created_at FROM catalog_campaigns WHERE status = 'draft';
