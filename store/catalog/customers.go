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
	"github.com/punchcard/punchcard/store"
)

// MaxAttributes bounds a customer's attributes.
const MaxAttributes = 32

func validateCustomer(cu *Customer) error {
	if err := protocol.ValidateID("id", string(cu.ID)); err != nil {
		return fieldOf("id", err)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"email", cu.Email, 254}, {"name", cu.Name, 200}, {"phone", cu.Phone, 32}, {"segment", cu.Segment, rules.MaxStringLen}, {"tier", cu.Tier, rules.MaxStringLen}} {
		if len(f.v) > f.max {
			return protocol.FieldError(f.name, "%s is longer than %d characters", f.name, f.max)
		}
	}
	if len(cu.Attributes) > MaxAttributes {
		return protocol.FieldError("attributes", "at most %d attributes", MaxAttributes)
	}
	for k, v := range cu.Attributes {
		if k == "" || len(k) > rules.MaxStringLen || len(v) > rules.MaxStringLen {
			return protocol.FieldError("attributes."+k, "attribute keys are 1 to %d and values at most %d characters", rules.MaxStringLen, rules.MaxStringLen)
		}
	}
	return nil
}

// CreateCustomer stores a new customer. Reason codes: invalid_input,
// not_found (tenant), conflict (the ID exists).
func (c *Catalog) CreateCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, cu Customer) (Customer, error) {
	if err := validateCustomer(&cu); err != nil {
		return Customer{}, err
	}
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		cu.CreatedAt, cu.UpdatedAt, cu.ErasedAt = now, now, time.Time{}
		attrs, err := json.Marshal(orEmptyMap(cu.Attributes))
		if err != nil {
			return fmt.Errorf("catalog: customer: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO catalog_customers (tenant, id, email, name, phone, segment, tier, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(tenant), string(cu.ID), cu.Email, cu.Name, cu.Phone, cu.Segment, cu.Tier, string(attrs), now.UnixMicro(), now.UnixMicro())
		if isUnique(err) {
			return conflict("id", "customer %q already exists", cu.ID)
		}
		if err != nil {
			return fmt.Errorf("catalog: create customer: %w", err)
		}
		return audit(ctx, tx, tenant, actor, "customer.create", "customer/"+string(cu.ID), nil, cu, v, now)
	})
	return cu, err
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// UpdateCustomer replaces a customer's data. Reason codes: invalid_input,
// not_found, conflict (erased).
func (c *Catalog) UpdateCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, cu Customer) (Customer, error) {
	if err := validateCustomer(&cu); err != nil {
		return Customer{}, err
	}
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, err := getCustomer(ctx, tx, tenant, cu.ID)
		if err != nil {
			return err
		}
		if !old.ErasedAt.IsZero() {
			return conflict("", "customer %q has been erased", cu.ID)
		}
		cu.CreatedAt, cu.UpdatedAt = old.CreatedAt, now
		attrs, err := json.Marshal(orEmptyMap(cu.Attributes))
		if err != nil {
			return fmt.Errorf("catalog: customer: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE catalog_customers SET email = ?, name = ?, phone = ?, segment = ?, tier = ?, attributes = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
			cu.Email, cu.Name, cu.Phone, cu.Segment, cu.Tier, string(attrs), now.UnixMicro(), string(tenant), string(cu.ID))
		if err != nil {
			return fmt.Errorf("catalog: update customer: %w", err)
		}
		if old.Tier != cu.Tier {
			if err := touchTierTx(ctx, tx, tenant, cu.ID, v); err != nil { // tiers.go
				return err
			}
		}
		return audit(ctx, tx, tenant, actor, "customer.update", "customer/"+string(cu.ID), old, cu, v, now)
	})
	return cu, err
}

// EraseCustomer removes a customer's personal data (GDPR erasure): email,
// name, phone, segment, tier and attributes are cleared; the audit log's
// entries about the customer keep who did what and when but lose their
// before and after copies; the tokens issued to the customer lose their
// text (which carries tier and segment, and is a bearer credential support
// no longer needs). The ID, the token rows and every ledger amount stay,
// so budgets and balances still add up. The hub opens its database with
// store.Options.SecureDelete, so the old bytes are overwritten, and the
// WAL is checkpointed and truncated after the erase (see store.Checkpoint)
// so no copy stays there either. Reason codes: not_found, conflict
// (already erased).
func (c *Catalog) EraseCustomer(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error) {
	var out Customer
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, err := getCustomer(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if !old.ErasedAt.IsZero() {
			return conflict("", "customer %q is already erased", id)
		}
		_, err = tx.ExecContext(ctx, `UPDATE catalog_customers SET email = '', name = '', phone = '', segment = '', tier = '', attributes = '{}', updated_at = ?, erased_at = ? WHERE tenant = ? AND id = ?`,
			now.UnixMicro(), now.UnixMicro(), string(tenant), string(id))
		if err != nil {
			return fmt.Errorf("catalog: erase customer: %w", err)
		}
		if err := touchTierTx(ctx, tx, tenant, id, v); err != nil { // tiers.go
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE catalog_audit SET
			before = CASE WHEN before IS NULL THEN NULL ELSE '{"erased":true}' END,
			after = CASE WHEN after IS NULL THEN NULL ELSE '{"erased":true}' END
			WHERE tenant = ? AND target = ?`, string(tenant), "customer/"+string(id))
		if err != nil {
			return fmt.Errorf("catalog: erase customer audit: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE catalog_tokens SET text = '' WHERE tenant = ? AND customer = ?`, string(tenant), string(id))
		if err != nil {
			return fmt.Errorf("catalog: erase customer tokens: %w", err)
		}
		// The tokens distributed to them too (distributions.go): an export
		// then has no text, and no QR code, for them.
		_, err = tx.ExecContext(ctx, `UPDATE catalog_distribution_items SET text = '' WHERE tenant = ? AND customer = ? AND text IS NOT NULL AND text <> code`, string(tenant), string(id))
		if err != nil {
			return fmt.Errorf("catalog: erase customer distributions: %w", err)
		}
		out = Customer{ID: id, CreatedAt: old.CreatedAt, UpdatedAt: now, ErasedAt: now}
		return audit(ctx, tx, tenant, actor, "customer.erase", "customer/"+string(id), nil, map[string]any{"erased": true}, v, now)
	})
	if err != nil {
		return out, err
	}
	// The erase is committed; the WAL still holds the pages as they were
	// before it. A reader in the middle of a query can keep the checkpoint
	// from finishing: try a few times, then leave it to the next one.
	for i := range eraseCheckpointTries {
		done, err := store.Checkpoint(ctx, c.db)
		if err != nil || done {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, nil
		case <-time.After(time.Duration(i+1) * 20 * time.Millisecond):
		}
	}
	return out, nil
}

// eraseCheckpointTries bounds EraseCustomer's attempts to truncate the WAL.
const eraseCheckpointTries = 5

const customerCols = `id, email, name, phone, segment, tier, attributes, created_at, updated_at, erased_at`

func scanCustomer(s scanner) (Customer, error) {
	var cu Customer
	var attrs string
	var created, updated int64
	var erased sql.NullInt64
	if err := s.Scan(&cu.ID, &cu.Email, &cu.Name, &cu.Phone, &cu.Segment, &cu.Tier, &attrs, &created, &updated, &erased); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Customer{}, err
		}
		return Customer{}, fmt.Errorf("catalog: customer: %w", err)
	}
	if err := json.Unmarshal([]byte(attrs), &cu.Attributes); err != nil {
		return Customer{}, fmt.Errorf("catalog: customer attributes: %w", err)
	}
	if len(cu.Attributes) == 0 {
		cu.Attributes = nil
	}
	cu.CreatedAt, cu.UpdatedAt, cu.ErasedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC(), fromMicros(erased)
	return cu, nil
}

func getCustomer(ctx context.Context, q querier, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error) {
	cu, err := scanCustomer(q.QueryRowContext(ctx, `SELECT `+customerCols+` FROM catalog_customers WHERE tenant = ? AND id = ?`, string(tenant), string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return Customer{}, notFound("customer", string(id))
	}
	return cu, err
}

// Customers lists a tenant's customers with an ID after after, at most
// limit.
func (c *Catalog) Customers(ctx context.Context, tenant protocol.TenantID, after string, limit int) ([]Customer, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+customerCols+` FROM catalog_customers WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`,
		string(tenant), after, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("catalog: customers: %w", err)
	}
	return collect(rows, scanCustomer)
}

// CustomerHistory is the audit entries about one customer, oldest first.
func (c *Catalog) CustomerHistory(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID, limit int) ([]AuditEntry, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, tenant, actor, action, target, before, after, version, at FROM catalog_audit WHERE tenant = ? AND target = ? ORDER BY id LIMIT ?`,
		string(tenant), "customer/"+string(id), clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("catalog: customer history: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var before, after sql.NullString
		var at int64
		if err := rows.Scan(&e.ID, &e.Tenant, &e.Actor, &e.Action, &e.Target, &before, &after, &e.Version, &at); err != nil {
			return nil, fmt.Errorf("catalog: customer history: %w", err)
		}
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
