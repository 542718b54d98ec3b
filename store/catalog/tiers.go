package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/tiers"
)

// SetTierProgram stores the tenant's tier programme (replacing any), as a
// catalog change. Reason codes: invalid_input, not_found (tenant).
func (c *Catalog) SetTierProgram(ctx context.Context, actor Actor, tenant protocol.TenantID, p tiers.Program) (tiers.Program, error) {
	if err := p.Validate(); err != nil {
		return tiers.Program{}, err
	}
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, found, err := c.TierProgramTx(ctx, tx, tenant)
		if err != nil {
			return err
		}
		p.UpdatedAt = now.UTC()
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("catalog: tier programme: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_tier_programs (tenant, program, version, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant) DO UPDATE SET program = excluded.program, version = excluded.version, updated_at = excluded.updated_at`,
			string(tenant), string(b), v, now.UnixMicro()); err != nil {
			return fmt.Errorf("catalog: tier programme: %w", err)
		}
		var before any
		if found {
			before = old
		}
		return audit(ctx, tx, tenant, actor, "tiers.set", "tiers", before, p, v, now)
	})
	return p, err
}

// TierProgram is the tenant's tier programme; false when it has none.
func (c *Catalog) TierProgram(ctx context.Context, tenant protocol.TenantID) (tiers.Program, bool, error) {
	var p tiers.Program
	var found bool
	err := c.read(ctx, func(tx *sql.Tx) error {
		var err error
		p, found, err = c.TierProgramTx(ctx, tx, tenant)
		return err
	})
	return p, found, err
}

// TierProgramTx is TierProgram in tx (the ledger's transaction).
func (c *Catalog) TierProgramTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (tiers.Program, bool, error) {
	var b string
	err := tx.QueryRowContext(ctx, `SELECT program FROM catalog_tier_programs WHERE tenant = ?`, string(tenant)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return tiers.Program{}, false, nil
	}
	if err != nil {
		return tiers.Program{}, false, fmt.Errorf("catalog: tier programme: %w", err)
	}
	var p tiers.Program
	if err := json.Unmarshal([]byte(b), &p); err != nil {
		return tiers.Program{}, false, fmt.Errorf("catalog: tier programme: %w", err)
	}
	return p, true, nil
}

// SetCustomerTierTx sets a customer's tier as the ledger decided it, in
// the ledger's transaction tx. It does not move the tenant's catalog
// version: customer state travels to the tills by its own sequence (the
// ledger's customer-state position, hub/snapshots), so a tier change does
// not make every till of the tenant fetch a catalog delta. The tier is
// marked for the catalog's own deltas at the next version (tier_version
// = current + 1), so an agent that sends no customer-state position still
// hears of it with the next catalog change. v is ignored (kept for the
// ledger's interface). It returns the tenant's catalog version (not
// moved) when the customer's tier was set, 0 when the catalog does not know the customer (or it was
// erased): nothing to tell the tills then. The caller tells the read
// cache after the commit (CustomerChanged).
func (c *Catalog) SetCustomerTierTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, customer protocol.CustomerID, tier string, v uint64) (uint64, error) {
	var erased sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT erased_at FROM catalog_customers WHERE tenant = ? AND id = ?`, string(tenant), string(customer)).Scan(&erased)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && erased.Valid) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("catalog: customer tier: %w", err)
	}
	var cur uint64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM catalog_tenants WHERE id = ?`, string(tenant)).Scan(&cur); err != nil {
		return 0, fmt.Errorf("catalog: customer tier: %w", err)
	}
	now := c.now()
	if _, err := tx.ExecContext(ctx, `UPDATE catalog_customers SET tier = ?, tier_version = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		tier, cur+1, now.UnixMicro(), string(tenant), string(customer)); err != nil {
		return 0, fmt.Errorf("catalog: customer tier: %w", err)
	}
	return cur, nil
}

// Changed tells the catalog's read cache that the tenant's version is v
// (a change committed by another service in the shared database), so it
// is read again at once.
func (c *Catalog) Changed(tenant protocol.TenantID, v uint64) {
	if c.CacheTTL >= 0 {
		c.observe(tenant, v)
	}
}

// CustomerTiers returns the tier of each of the customers ids as the
// ledger's tier programme set it, one entry per customer ("" when it has
// none, the catalog does not know it or it was erased): a customer-state
// delta's Tiers (snapshot.MergeTiers).
func (c *Catalog) CustomerTiers(ctx context.Context, tenant protocol.TenantID, ids []protocol.CustomerID) ([]snapshot.CustomerTier, error) {
	out := make([]snapshot.CustomerTier, 0, len(ids))
	for _, id := range ids {
		ct := snapshot.CustomerTier{Customer: id}
		err := c.db.QueryRowContext(ctx, `SELECT tier FROM catalog_customers WHERE tenant = ? AND id = ? AND tier_version > 0 AND erased_at IS NULL`,
			string(tenant), string(id)).Scan(&ct.Tier)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("catalog: customer tiers: %w", err)
		}
		out = append(out, ct)
	}
	return out, nil
}

// AllCustomerTiers lists every customer with a tier the ledger's tier
// programme set: a full snapshot's Tiers, read now (not at a version).
func (c *Catalog) AllCustomerTiers(ctx context.Context, tenant protocol.TenantID) ([]snapshot.CustomerTier, error) {
	var out []snapshot.CustomerTier
	err := c.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = snapshotTiers(ctx, tx, tenant, 0)
		return err
	})
	return out, err
}

// snapshotTiers lists the customers' tiers the ledger set after since
// (every set tier for a full snapshot; a delta also lists tiers lost, as
// "").
func snapshotTiers(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, since uint64) ([]snapshot.CustomerTier, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, tier FROM catalog_customers WHERE tenant = ? AND tier_version > ? AND tier_version > 0 AND (? > 0 OR tier != '') ORDER BY id`,
		string(tenant), since, since)
	if err != nil {
		return nil, fmt.Errorf("catalog: snapshot tiers: %w", err)
	}
	defer rows.Close()
	var out []snapshot.CustomerTier
	for rows.Next() {
		var ct snapshot.CustomerTier
		if err := rows.Scan(&ct.Customer, &ct.Tier); err != nil {
			return nil, fmt.Errorf("catalog: snapshot tiers: %w", err)
		}
		out = append(out, ct)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: snapshot tiers: %w", err)
	}
	return out, nil
}

// touchTierTx lists a customer's tier in the next delta again when a
// person changed it (an update, an erase) after the programme had set one,
// so the tills hold what the profile says: an erased customer's tier
// leaves them.
func touchTierTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, id protocol.CustomerID, v uint64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE catalog_customers SET tier_version = ? WHERE tenant = ? AND id = ? AND tier_version > 0`,
		v, string(tenant), string(id)); err != nil {
		return fmt.Errorf("catalog: erase customer tier: %w", err)
	}
	return nil
}
