package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Distribution types (protocol/catalog).
type (
	Distribution        = pcatalog.Distribution
	DistributionRequest = pcatalog.DistributionRequest
	DistributionItem    = pcatalog.DistributionItem
	DistributionRef     = pcatalog.DistributionRef
)

const distributionCols = `id, campaign, kind, segment, state, total, done, error, expires_at, created_at, updated_at`

func scanDistribution(s scanner) (Distribution, error) {
	var d Distribution
	var exp sql.NullInt64
	var created, updated int64
	err := s.Scan(&d.ID, &d.Campaign, &d.Kind, &d.Segment, &d.State, &d.Total, &d.Done, &d.Error, &exp, &created, &updated)
	if err != nil {
		return Distribution{}, err
	}
	if exp.Valid {
		d.Expires = time.UnixMicro(exp.Int64).UTC()
	}
	d.CreatedAt, d.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return d, nil
}

func getDistribution(ctx context.Context, q querier, tenant protocol.TenantID, id string) (Distribution, error) {
	d, err := scanDistribution(q.QueryRowContext(ctx, `SELECT `+distributionCols+` FROM catalog_distributions WHERE tenant = ? AND id = ?`, string(tenant), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Distribution{}, notFound("distribution", id)
	}
	if err != nil {
		return Distribution{}, fmt.Errorf("catalog: distribution: %w", err)
	}
	return d, nil
}

// PublishDistribution records distribution id of req.Campaign's codes or
// tokens to req.Customers (the caller resolves a segment into its members
// and leaves Segment set for the record), in one transaction. The
// recipients wait for their code (state running) until
// FillDistribution gives it to them. Publishing again is idempotent:
// customers already in the distribution keep their place and code, and
// only new ones are added. Reason codes: invalid_input (field), not_found
// (campaign; customers[i] for a token to an unknown customer),
// campaign_stopped, conflict (the id is taken by another campaign or kind;
// customers[i] erased).
func (c *Catalog) PublishDistribution(ctx context.Context, actor Actor, tenant protocol.TenantID, id string, req DistributionRequest) (Distribution, error) {
	if err := protocol.ValidateID("id", id); err != nil {
		return Distribution{}, protocol.WithField("id", err)
	}
	if err := protocol.ValidateID("campaign", string(req.Campaign)); err != nil {
		return Distribution{}, protocol.WithField("campaign", err)
	}
	if req.Kind != pcatalog.DistributeCode && req.Kind != pcatalog.DistributeToken {
		return Distribution{}, protocol.FieldError("kind", "kind must be %q or %q", pcatalog.DistributeCode, pcatalog.DistributeToken)
	}
	if err := pcatalog.CheckRecipients(req.Customers); err != nil {
		return Distribution{}, err // a segment's members too (an empty segment: nobody yet)
	}
	var out Distribution
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		cp, err := getCampaign(ctx, tx, tenant, req.Campaign)
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("campaign %q not found", req.Campaign), Field: "campaign"}
		}
		if err != nil {
			return err
		}
		if cp.Rules.Status == rules.StatusStopped {
			return &protocol.Error{Code: protocol.CodeCampaignStopped, Message: "the campaign is stopped; start it before distributing", Field: "campaign"}
		}
		if req.Kind == pcatalog.DistributeCode {
			if _, err := c.checkSpec(ctx, tx, tenant, req.Campaign, &CodeSpec{Uses: 1}); err != nil {
				return err
			}
		}
		old, err := getDistribution(ctx, tx, tenant, id)
		exists := err == nil
		switch {
		case err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound:
			return err
		case exists && old.Campaign != req.Campaign:
			return conflict("campaign", "distribution %q is of campaign %q", id, old.Campaign)
		case exists && old.Kind != req.Kind:
			return conflict("kind", "distribution %q is of kind %q", id, old.Kind)
		}
		if req.Kind == pcatalog.DistributeToken {
			for i, cu := range req.Customers {
				got, err := getCustomer(ctx, tx, tenant, cu)
				f := fmt.Sprintf("customers[%d]", i)
				if protocol.ErrorCode(err) == protocol.CodeNotFound {
					return &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("customer %q not found", cu), Field: f}
				}
				if err != nil {
					return err
				}
				if !got.ErasedAt.IsZero() {
					return conflict(f, "customer %q's data has been erased", cu)
				}
			}
		}
		var exp any
		if !req.Expires.IsZero() {
			if !req.Expires.After(now) {
				return protocol.FieldError("expires", "expires must be in the future")
			}
			if req.Expires.Sub(now) > c.MaxTokenTTL {
				return protocol.FieldError("expires", "a token lives at most %s", c.MaxTokenTTL)
			}
			exp = protocol.APITime(req.Expires).UnixMicro()
		}
		if !exists {
			_, err = tx.ExecContext(ctx, `INSERT INTO catalog_distributions (tenant, id, campaign, kind, segment, state, total, done, expires_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, 'running', 0, 0, ?, ?, ?)`, string(tenant), id, string(req.Campaign), req.Kind, req.Segment, exp, now.UnixMicro(), now.UnixMicro())
			if err != nil {
				return fmt.Errorf("catalog: insert distribution: %w", err)
			}
		}
		total := old.Total
		ins, err := tx.PrepareContext(ctx, `INSERT INTO catalog_distribution_items (tenant, distribution, n, customer, campaign) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, distribution, customer) DO NOTHING`)
		if err != nil {
			return fmt.Errorf("catalog: distribution items: %w", err)
		}
		defer ins.Close()
		for _, cu := range req.Customers {
			res, err := ins.ExecContext(ctx, string(tenant), id, total+1, string(cu), string(req.Campaign))
			if err != nil {
				return fmt.Errorf("catalog: distribution item: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				total++
			}
		}
		seg := req.Segment
		if seg == "" {
			seg = old.Segment
		}
		if exp == nil && exists && !old.Expires.IsZero() {
			exp = old.Expires.UnixMicro()
		}
		_, err = tx.ExecContext(ctx, `UPDATE catalog_distributions SET total = ?, segment = ?, expires_at = ?, error = '',
			state = CASE WHEN done < ? THEN 'running' ELSE 'done' END, updated_at = ? WHERE tenant = ? AND id = ?`,
			total, seg, exp, total, now.UnixMicro(), string(tenant), id)
		if err != nil {
			return fmt.Errorf("catalog: update distribution: %w", err)
		}
		if out, err = getDistribution(ctx, tx, tenant, id); err != nil {
			return err
		}
		return audit(ctx, tx, tenant, actor, "distribution.publish", "distribution/"+id, nil,
			map[string]any{"campaign": req.Campaign, "kind": req.Kind, "segment": req.Segment, "listed": len(req.Customers), "total": total}, v, now)
	})
	return out, err
}

// FillDistribution makes the codes or tokens of up to limit recipients
// still waiting for one, in one transaction, and returns the distribution
// afterwards and the catalog version the new codes carry (0 when nothing
// was made). A crash loses none of it or all. Codes are single-use codes
// of the campaign from the default generator (protocol/codes); tokens name
// their customer and expire at the distribution's expiry (default now +
// DefaultTokenTTL). Reason codes: not_found, campaign_stopped, conflict (a
// customer erased since), invalid_input; the caller marks the distribution
// failed with it (FailDistribution).
func (c *Catalog) FillDistribution(ctx context.Context, actor Actor, tenant protocol.TenantID, id string, limit int) (Distribution, uint64, error) {
	var out Distribution
	var made uint64
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		d, err := getDistribution(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT n, customer FROM catalog_distribution_items WHERE tenant = ? AND distribution = ? AND code IS NULL ORDER BY n LIMIT ?`,
			string(tenant), id, limit)
		if err != nil {
			return fmt.Errorf("catalog: pending items: %w", err)
		}
		type pending struct {
			n  int64
			cu protocol.CustomerID
		}
		ps, err := collect(rows, func(s scanner) (pending, error) {
			var p pending
			err := s.Scan(&p.n, &p.cu)
			return p, err
		})
		if err != nil {
			return fmt.Errorf("catalog: pending items: %w", err)
		}
		if len(ps) == 0 {
			out = d
			return errNoChange
		}
		cp, err := getCampaign(ctx, tx, tenant, d.Campaign)
		if err != nil {
			return err
		}
		if cp.Rules.Status == rules.StatusStopped {
			return &protocol.Error{Code: protocol.CodeCampaignStopped, Message: "the campaign is stopped; start it and publish again to resume", Field: "campaign"}
		}
		set, err := tx.PrepareContext(ctx, `UPDATE catalog_distribution_items SET code = ?, text = ?, at = ? WHERE tenant = ? AND distribution = ? AND n = ?`)
		if err != nil {
			return fmt.Errorf("catalog: distribution items: %w", err)
		}
		defer set.Close()
		switch d.Kind {
		case pcatalog.DistributeCode:
			g, err := codes.New(codes.Options{})
			if err != nil {
				return err
			}
			printed, err := g.Generate(ctx, len(ps), txExists{tx, tenant})
			if err != nil {
				return err
			}
			if err := insertCodes(ctx, tx, tenant, d.Campaign, printed, CodeSpec{Uses: 1}, v, now); err != nil {
				return err
			}
			for i, p := range ps {
				if _, err := set.ExecContext(ctx, printed[i], printed[i], now.UnixMicro(), string(tenant), id, p.n); err != nil {
					return fmt.Errorf("catalog: distribution item: %w", err)
				}
			}
		default:
			for _, p := range ps {
				tk, err := c.issueToken(ctx, tx, actor, tenant, TokenRequest{Campaign: d.Campaign, Customer: p.cu, Uses: 1, Expires: d.Expires}, v, now)
				if err != nil {
					return err
				}
				if _, err := set.ExecContext(ctx, string(tk.Serial), tk.Text, now.UnixMicro(), string(tenant), id, p.n); err != nil {
					return fmt.Errorf("catalog: distribution item: %w", err)
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE catalog_distributions SET done = done + ?, state = CASE WHEN done + ? >= total THEN 'done' ELSE 'running' END, updated_at = ?
			WHERE tenant = ? AND id = ?`, len(ps), len(ps), now.UnixMicro(), string(tenant), id)
		if err != nil {
			return fmt.Errorf("catalog: update distribution: %w", err)
		}
		if out, err = getDistribution(ctx, tx, tenant, id); err != nil {
			return err
		}
		made = v
		return audit(ctx, tx, tenant, actor, "distribution.fill", "distribution/"+id, nil,
			map[string]any{"made": len(ps), "done": out.Done, "total": out.Total}, v, now)
	})
	return out, made, err
}

// FailDistribution records why a distribution stopped (state failed); a
// publish of it resumes it.
func (c *Catalog) FailDistribution(ctx context.Context, tenant protocol.TenantID, id, reason string) error {
	_, err := c.db.ExecContext(ctx, `UPDATE catalog_distributions SET state = 'failed', error = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		reason, c.now().UnixMicro(), string(tenant), id)
	if err != nil {
		return fmt.Errorf("catalog: fail distribution: %w", err)
	}
	return nil
}

// Distribution returns a distribution's record and progress. Reason
// codes: not_found.
func (c *Catalog) Distribution(ctx context.Context, tenant protocol.TenantID, id string) (Distribution, error) {
	return getDistribution(ctx, c.db, tenant, id)
}

// RunningDistributions lists every tenant's distributions in state
// running, for the distributor to resume after a restart.
func (c *Catalog) RunningDistributions(ctx context.Context) ([]DistributionRef, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT tenant, id FROM catalog_distributions WHERE state = 'running' ORDER BY created_at`)
	if err != nil {
		return nil, fmt.Errorf("catalog: running distributions: %w", err)
	}
	return collect(rows, func(s scanner) (DistributionRef, error) {
		var r DistributionRef
		err := s.Scan(&r.Tenant, &r.ID)
		return r, err
	})
}

// DistributionItems returns up to limit recipients with their code, in
// the distribution's order from after n (0: from the start): an export
// pages through them so that its memory stays flat.
func (c *Catalog) DistributionItems(ctx context.Context, tenant protocol.TenantID, id string, after int64, limit int) ([]DistributionItem, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT n, customer, code, text FROM catalog_distribution_items
		WHERE tenant = ? AND distribution = ? AND n > ? AND code IS NOT NULL ORDER BY n LIMIT ?`, string(tenant), id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: distribution items: %w", err)
	}
	return collect(rows, func(s scanner) (DistributionItem, error) {
		var it DistributionItem
		err := s.Scan(&it.N, &it.Customer, &it.Code, &it.Text)
		return it, err
	})
}

// DistributedCodes counts the codes and tokens of campaign that
// distributions gave out in [from, to) (when each was made): the
// denominator of a report's redemption rate of distributed codes. A zero
// from or to leaves that end open.
func (c *Catalog) DistributedCodes(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID, from, to time.Time) (int64, error) {
	lo, hi := int64(0), int64(1<<62)
	if !from.IsZero() {
		lo = from.UnixMicro()
	}
	if !to.IsZero() {
		hi = to.UnixMicro()
	}
	var n int64
	err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_distribution_items WHERE tenant = ? AND campaign = ? AND code IS NOT NULL AND at >= ? AND at < ?`,
		string(tenant), string(campaign), lo, hi).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("catalog: distributed codes: %w", err)
	}
	return n, nil
}
