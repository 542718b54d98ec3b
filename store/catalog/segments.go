package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

// PutSegment creates or replaces a tenant's segment definition; created
// says which. Reason codes: invalid_input (field; also past
// segment.MaxTenantDef definitions), not_found (tenant).
func (c *Catalog) PutSegment(ctx context.Context, tenant protocol.TenantID, d segment.Definition) (created bool, err error) {
	if err := d.Validate(); err != nil {
		return false, err
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return false, fmt.Errorf("catalog: segment: %w", err)
	}
	err = c.write(ctx, tenant, func(tx *sql.Tx, _ uint64, now time.Time) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_segments WHERE tenant = ? AND id = ?`, string(tenant), d.ID).Scan(&n); err != nil {
			return fmt.Errorf("catalog: segment: %w", err)
		}
		created = n == 0
		if created {
			var all int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_segments WHERE tenant = ?`, string(tenant)).Scan(&all); err != nil {
				return fmt.Errorf("catalog: segment: %w", err)
			}
			if all >= segment.MaxTenantDef {
				return protocol.FieldError("id", "a tenant has at most %d segments", segment.MaxTenantDef)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO catalog_segments (tenant, id, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
			string(tenant), d.ID, string(doc), now.UnixMicro(), now.UnixMicro())
		if err != nil {
			return fmt.Errorf("catalog: put segment: %w", err)
		}
		return nil
	})
	return created, err
}

// Segment returns one definition. Reason codes: not_found.
func (c *Catalog) Segment(ctx context.Context, tenant protocol.TenantID, id string) (segment.Definition, error) {
	var doc string
	err := c.db.QueryRowContext(ctx, `SELECT doc FROM catalog_segments WHERE tenant = ? AND id = ?`, string(tenant), id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return segment.Definition{}, &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("segment %q not found", id), Field: "segment"}
	}
	if err != nil {
		return segment.Definition{}, fmt.Errorf("catalog: segment: %w", err)
	}
	var d segment.Definition
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return d, fmt.Errorf("catalog: segment %s: %w", id, err)
	}
	return d, nil
}

// DeleteSegment removes a definition. Reason codes: not_found.
func (c *Catalog) DeleteSegment(ctx context.Context, tenant protocol.TenantID, id string) error {
	return c.write(ctx, tenant, func(tx *sql.Tx, _ uint64, _ time.Time) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM catalog_segments WHERE tenant = ? AND id = ?`, string(tenant), id)
		if err != nil {
			return fmt.Errorf("catalog: delete segment: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("segment %q not found", id), Field: "segment"}
		}
		return nil
	})
}

// SegmentDefs lists a tenant's segment definitions in ID order
// (ledger.SegmentFacts; at most segment.MaxTenantDef).
// Every change of them bumps the tenant's version (write), so they are
// cached per version like the campaigns; callers must not modify them.
func (c *Catalog) SegmentDefs(ctx context.Context, tenant protocol.TenantID) ([]segment.Definition, error) {
	g, err := c.current(ctx, tenant)
	if err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound {
		return nil, err
	}
	if g == nil || err != nil {
		return c.segmentDefs(ctx, tenant)
	}
	g.mu.RLock()
	d, ok := g.segs, g.segsOK
	g.mu.RUnlock()
	if ok {
		return d, nil
	}
	d, err = c.segmentDefs(ctx, tenant)
	if err != nil {
		return nil, err
	}
	d = slices.Clip(d) // an append by a caller copies
	g.mu.Lock()
	g.segs, g.segsOK = d, true
	g.mu.Unlock()
	return d, nil
}

// segmentDefs reads the definitions.
func (c *Catalog) segmentDefs(ctx context.Context, tenant protocol.TenantID) ([]segment.Definition, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT doc FROM catalog_segments WHERE tenant = ? ORDER BY id`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("catalog: segments: %w", err)
	}
	defer rows.Close()
	var out []segment.Definition
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("catalog: segments: %w", err)
		}
		var d segment.Definition
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("catalog: segments: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CustomerAttributes is a customer's attributes (ledger.SegmentFacts); a
// customer the catalog does not know has none.
func (c *Catalog) CustomerAttributes(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (map[string]string, error) {
	cu, err := c.Customer(ctx, tenant, id)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return nil, nil
	}
	return cu.Attributes, err
}
