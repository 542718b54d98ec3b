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
// the ledger's transaction tx: a catalog change (the tenant's version
// moves) that the next snapshot lists for the tills. v is a version this
// transaction already moved the tenant to (several changes share it), 0
// to move it now. It returns the version of the change, or 0 when the
// catalog does not know the customer (or it was erased): nothing to tell
// the tills then.
func (c *Catalog) SetCustomerTierTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, customer protocol.CustomerID, tier string, v uint64) (uint64, error) {
	var erased sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT erased_at FROM catalog_customers WHERE tenant = ? AND id = ?`, string(tenant), string(customer)).Scan(&erased)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && erased.Valid) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("catalog: customer tier: %w", err)
	}
	now := c.now()
	if v == 0 {
		if v, err = bump(ctx, tx, tenant, now); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE catalog_customers SET tier = ?, tier_version = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		tier, v, now.UnixMicro(), string(tenant), string(customer)); err != nil {
		return 0, fmt.Errorf("catalog: customer tier: %w", err)
	}
	return v, nil
}

// Changed tells the catalog's read cache that the tenant's version is v
// (a change committed by another service in the shared database, such as
// a tier the ledger set), so it is read again at once.
func (c *Catalog) Changed(tenant protocol.TenantID, v uint64) {
	if c.CacheTTL >= 0 {
		c.observe(tenant, v)
	}
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
