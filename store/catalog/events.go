package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// EventsAfter lists up to limit events of the catalog's log
// (catalog_008_events.sql) with seq > after, in seq order: the webhook
// relay's read. An event's id is 'evt_c' || hex(seq) || '_' || salt
// (catalog_008_events.sql).
func (c *Catalog) EventsAfter(ctx context.Context, after int64, limit int) ([]protocol.Event, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT seq, printf('evt_c%x_%s', seq, salt), tenant, type, at, v, body FROM catalog_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: events: %w", err)
	}
	defer rows.Close()
	var out []protocol.Event
	for rows.Next() {
		var e protocol.Event
		var at int64
		var t, body string
		if err := rows.Scan(&e.Seq, &e.ID, &t, &e.Type, &at, &e.V, &body); err != nil {
			return nil, fmt.Errorf("catalog: events: %w", err)
		}
		e.Tenant, e.At, e.Body = protocol.TenantID(t), time.UnixMicro(at).UTC(), json.RawMessage(body)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: events: %w", err)
	}
	return out, nil
}

// PruneEvents deletes up to limit catalog events written before before.
func (c *Catalog) PruneEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := c.db.ExecContext(ctx, `DELETE FROM catalog_events WHERE seq IN (SELECT seq FROM catalog_events WHERE at < ? ORDER BY at LIMIT ?)`, before.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("catalog: prune events: %w", err)
	}
	return res.RowsAffected()
}
