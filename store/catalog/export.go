package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// CustomerData collects a customer's data in one read transaction, with
// no limit on the number of tokens or audit entries. An erased customer's
// data is what is left after the erase. Reason codes: not_found.
func (c *Catalog) CustomerData(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (CustomerData, error) {
	var out CustomerData
	err := c.read(ctx, func(tx *sql.Tx) error {
		var err error
		if out.Customer, err = getCustomer(ctx, tx, tenant, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+tokenCols+` FROM catalog_tokens WHERE tenant = ? AND customer = ? ORDER BY issued_at, serial`,
			string(tenant), string(id))
		if err != nil {
			return fmt.Errorf("catalog: customer tokens: %w", err)
		}
		if out.Tokens, err = collect(rows, scanToken); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT id, tenant, actor, action, target, before, after, version, at FROM catalog_audit
			WHERE tenant = ? AND (target = ? OR target IN (SELECT 'token/' || serial FROM catalog_tokens WHERE tenant = ? AND customer = ?))
			ORDER BY id`, string(tenant), "customer/"+string(id), string(tenant), string(id))
		if err != nil {
			return fmt.Errorf("catalog: customer audit: %w", err)
		}
		out.Audit, err = collect(rows, scanAudit)
		return err
	})
	return out, err
}

func scanAudit(s scanner) (AuditEntry, error) {
	var e AuditEntry
	var before, after sql.NullString
	var at int64
	if err := s.Scan(&e.ID, &e.Tenant, &e.Actor, &e.Action, &e.Target, &before, &after, &e.Version, &at); err != nil {
		return AuditEntry{}, fmt.Errorf("catalog: audit: %w", err)
	}
	if before.Valid {
		e.Before = json.RawMessage(before.String)
	}
	if after.Valid {
		e.After = json.RawMessage(after.String)
	}
	e.At = time.UnixMicro(at).UTC()
	return e, nil
}
