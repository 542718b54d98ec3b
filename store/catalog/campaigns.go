package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// CreateCampaign validates the campaign JSON with protocol/rules and stores
// it. Reason codes: invalid_input (with the field path), unsupported_version,
// conflict (the ID exists).
func (c *Catalog) CreateCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, doc []byte) (Campaign, error) {
	rc, err := parseCampaign(tenant, doc)
	if err != nil {
		return Campaign{}, err
	}
	var out Campaign
	err = c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		out = Campaign{Rules: rc, Revision: 1, Version: v, CreatedAt: now, UpdatedAt: now}
		if rc.Status == rules.StatusStopped {
			out.StoppedAt = now
		}
		body, err := json.Marshal(rc)
		if err != nil {
			return fmt.Errorf("catalog: campaign json: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO catalog_campaigns (tenant, id, status, revision, doc, stopped_at, version, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)`,
			string(tenant), string(rc.ID), string(rc.Status), string(body), micros(out.StoppedAt), v, now.UnixMicro(), now.UnixMicro())
		if isUnique(err) {
			return conflict("id", "campaign %q already exists", rc.ID)
		}
		if err != nil {
			return fmt.Errorf("catalog: create campaign: %w", err)
		}
		if err := c.recordHistory(ctx, tx, tenant, rc, v, now); err != nil {
			return err
		}
		if rc.Status != rules.StatusActive {
			if err := openStop(ctx, tx, tenant, rc.ID, now); err != nil {
				return err
			}
		}
		return audit(ctx, tx, tenant, actor, "campaign.create", "campaign/"+string(rc.ID), nil, rc, v, now)
	})
	return out, err
}

func parseCampaign(tenant protocol.TenantID, doc []byte) (rules.Campaign, error) {
	rc, err := rules.ParseCampaignJSON(doc)
	if err != nil {
		return rules.Campaign{}, err
	}
	if rc.Tenant != tenant {
		return rules.Campaign{}, protocol.FieldError("tenant", "tenant must be %q, the tenant of this request", tenant)
	}
	return rc, nil
}

// UpdateCampaign replaces a campaign's document. The status cannot change
// here (StartCampaign and StopCampaign do that, so the kill switch has its
// own audit entries). Reason codes: invalid_input, not_found.
func (c *Catalog) UpdateCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID, doc []byte) (Campaign, error) {
	rc, err := parseCampaign(tenant, doc)
	if err != nil {
		return Campaign{}, err
	}
	if rc.ID != id {
		return Campaign{}, protocol.FieldError("id", "id must be %q, the campaign being updated", id)
	}
	var out Campaign
	err = c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, err := getCampaign(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if rc.Status != old.Rules.Status {
			return protocol.FieldError("status", "status is %q; use start or stop to change it", old.Rules.Status)
		}
		out = old
		out.Rules, out.Revision, out.Version, out.UpdatedAt = rc, old.Revision+1, v, now
		if err := putCampaign(ctx, tx, tenant, out); err != nil {
			return err
		}
		if err := c.recordHistory(ctx, tx, tenant, out.Rules, v, now); err != nil {
			return err
		}
		return audit(ctx, tx, tenant, actor, "campaign.update", "campaign/"+string(id), old.Rules, rc, v, now)
	})
	return out, err
}

// StartCampaign makes a draft or stopped campaign active. Starting an
// active campaign changes nothing. Reason codes: not_found.
func (c *Catalog) StartCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error) {
	return c.setStatus(ctx, actor, tenant, id, rules.StatusActive)
}

// StopCampaign is the kill switch: the campaign refuses every redemption
// from the next snapshot on (online at once). Stopping a stopped campaign
// changes nothing. Reason codes: not_found.
func (c *Catalog) StopCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error) {
	return c.setStatus(ctx, actor, tenant, id, rules.StatusStopped)
}

func (c *Catalog) setStatus(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID, st rules.Status) (Campaign, error) {
	var out Campaign
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, err := getCampaign(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		out = old
		if old.Rules.Status == st {
			return errNoChange
		}
		out.Rules.Status, out.Revision, out.Version, out.UpdatedAt = st, old.Revision+1, v, now
		out.StoppedAt = time.Time{}
		if st == rules.StatusStopped {
			out.StoppedAt = now
		}
		if err := putCampaign(ctx, tx, tenant, out); err != nil {
			return err
		}
		if err := c.recordHistory(ctx, tx, tenant, out.Rules, v, now); err != nil {
			return err
		}
		if st == rules.StatusStopped {
			err = openStop(ctx, tx, tenant, id, now)
		} else {
			err = closeStops(ctx, tx, tenant, id, now)
		}
		if err != nil {
			return err
		}
		action := "campaign.start"
		if st == rules.StatusStopped {
			action = "campaign.stop"
		}
		return audit(ctx, tx, tenant, actor, action, "campaign/"+string(id),
			map[string]any{"status": old.Rules.Status}, map[string]any{"status": st}, v, now)
	})
	return out, err
}

// openStop records the start of an interval the campaign is stopped in;
// closeStops ends the open ones. The ledger flags redemptions made in any
// such interval (CampaignFacts.Stops), also after a restart.
func openStop(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, id protocol.CampaignID, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO catalog_campaign_stops (tenant, campaign, stopped_at) VALUES (?, ?, ?)`,
		string(tenant), string(id), now.UnixMicro())
	if err != nil {
		return fmt.Errorf("catalog: campaign stop: %w", err)
	}
	return nil
}

func closeStops(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, id protocol.CampaignID, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE catalog_campaign_stops SET started_at = ? WHERE tenant = ? AND campaign = ? AND started_at IS NULL`,
		now.UnixMicro(), string(tenant), string(id))
	if err != nil {
		return fmt.Errorf("catalog: campaign start: %w", err)
	}
	return nil
}

// campaignStops lists the intervals a campaign was stopped in, oldest
// first; To is zero for the open one.
func campaignStops(ctx context.Context, q querier, tenant protocol.TenantID, id protocol.CampaignID) ([]protocol.StopInterval, error) {
	rows, err := q.QueryContext(ctx, `SELECT stopped_at, started_at FROM catalog_campaign_stops WHERE tenant = ? AND campaign = ? ORDER BY stopped_at`,
		string(tenant), string(id))
	if err != nil {
		return nil, fmt.Errorf("catalog: campaign stops: %w", err)
	}
	defer rows.Close()
	var out []protocol.StopInterval
	for rows.Next() {
		var from int64
		var to sql.NullInt64
		if err := rows.Scan(&from, &to); err != nil {
			return nil, fmt.Errorf("catalog: campaign stops: %w", err)
		}
		out = append(out, protocol.StopInterval{From: time.UnixMicro(from).UTC(), To: fromMicros(to)})
	}
	return out, rows.Err()
}

func putCampaign(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, cp Campaign) error {
	body, err := json.Marshal(cp.Rules)
	if err != nil {
		return fmt.Errorf("catalog: campaign json: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE catalog_campaigns SET status = ?, revision = ?, doc = ?, stopped_at = ?, version = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		string(cp.Rules.Status), cp.Revision, string(body), micros(cp.StoppedAt), cp.Version, cp.UpdatedAt.UnixMicro(), string(tenant), string(cp.Rules.ID))
	if err != nil {
		return fmt.Errorf("catalog: update campaign: %w", err)
	}
	return nil
}

const campaignCols = `doc, revision, version, stopped_at, created_at, updated_at`

func scanCampaign(s scanner) (Campaign, error) {
	var cp Campaign
	var doc string
	var stopped sql.NullInt64
	var created, updated int64
	if err := s.Scan(&doc, &cp.Revision, &cp.Version, &stopped, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Campaign{}, err
		}
		return Campaign{}, fmt.Errorf("catalog: campaign: %w", err)
	}
	if err := json.Unmarshal([]byte(doc), &cp.Rules); err != nil {
		return Campaign{}, fmt.Errorf("catalog: campaign doc: %w", err)
	}
	cp.StoppedAt, cp.CreatedAt, cp.UpdatedAt = fromMicros(stopped), time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return cp, nil
}

func getCampaign(ctx context.Context, q querier, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error) {
	cp, err := scanCampaign(q.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM catalog_campaigns WHERE tenant = ? AND id = ?`, string(tenant), string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, notFound("campaign", string(id))
	}
	return cp, err
}

// Campaign returns a campaign. Reason codes: not_found.
func (c *Catalog) Campaign(ctx context.Context, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error) {
	return getCampaign(ctx, c.db, tenant, id)
}

// Campaigns lists a tenant's campaigns changed after catalog version
// since (every campaign for 0), by ID.
func (c *Catalog) Campaigns(ctx context.Context, tenant protocol.TenantID, since uint64) ([]Campaign, error) {
	return listCampaigns(ctx, c.db, tenant, since)
}

func listCampaigns(ctx context.Context, q querier, tenant protocol.TenantID, since uint64) ([]Campaign, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+campaignCols+` FROM catalog_campaigns WHERE tenant = ? AND version > ? ORDER BY id`, string(tenant), since)
	if err != nil {
		return nil, fmt.Errorf("catalog: campaigns: %w", err)
	}
	return collect(rows, scanCampaign)
}

// RulesCatalog compiles the tenant's campaigns into a rules.Catalog for
// online evaluation.
func (c *Catalog) RulesCatalog(ctx context.Context, tenant protocol.TenantID) (*rules.Catalog, error) {
	cps, err := c.Campaigns(ctx, tenant, 0)
	if err != nil {
		return nil, err
	}
	rcs := make([]rules.Campaign, len(cps))
	for i, cp := range cps {
		rcs[i] = cp.Rules
	}
	return rules.NewCatalog(rcs)
}
