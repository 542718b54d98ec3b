package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// EventsAfter lists up to limit events of the catalog's log
// (catalog_008_events.sql) with seq > after, in seq order: the webhook
// relay's read. An event's id is 'evt_c' || hex(seq) || '_' || salt
// (catalog_008_events.sql).
func (c *Catalog) EventsAfter(ctx context.Context, after int64, limit int) ([]protocol.Event, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT seq, `+catalogEventID+`, tenant, type, at, v, body FROM catalog_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: events: %w", err)
	}
	return scanCatalogEvents(rows)
}

// EventsHead is the seq of the catalog log's last event (0: none):
// where a webhook relay with no endpoint to feed moves its cursor.
func (c *Catalog) EventsHead(ctx context.Context) (int64, error) {
	var seq int64
	if err := c.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM catalog_events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("catalog: events head: %w", err)
	}
	return seq, nil
}

// catalogEventID is the SQL of an event's id (catalog_008_events.sql).
const catalogEventID = `printf('evt_c%x_%s', seq, salt)`

// EventsBetween lists up to limit events of tenant written in [from, to),
// in seq order, after seq after: a webhook replay's read.
func (c *Catalog) EventsBetween(ctx context.Context, tenant protocol.TenantID, from, to time.Time, after int64, limit int) ([]protocol.Event, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT seq, `+catalogEventID+`, tenant, type, at, v, body FROM catalog_events
		WHERE at >= ? AND at < ? AND seq > ? AND tenant = ? ORDER BY seq LIMIT ?`, from.UnixMicro(), to.UnixMicro(), after, string(tenant), limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: events: %w", err)
	}
	return scanCatalogEvents(rows)
}

// EventByID finds one event of tenant by its id (ok false: none, or not
// a catalog event's id).
func (c *Catalog) EventByID(ctx context.Context, tenant protocol.TenantID, id string) (protocol.Event, bool, error) {
	rest, ok := strings.CutPrefix(id, "evt_c")
	h, salt, ok2 := strings.Cut(rest, "_")
	seq, err := strconv.ParseInt(h, 16, 64)
	if !ok || !ok2 || err != nil || seq <= 0 || salt == "" {
		return protocol.Event{}, false, nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT seq, `+catalogEventID+`, tenant, type, at, v, body FROM catalog_events WHERE seq = ? AND salt = ? AND tenant = ?`, seq, salt, string(tenant))
	if err != nil {
		return protocol.Event{}, false, fmt.Errorf("catalog: event: %w", err)
	}
	es, err := scanCatalogEvents(rows)
	if err != nil || len(es) == 0 {
		return protocol.Event{}, false, err
	}
	return es[0], true, nil
}

func scanCatalogEvents(rows *sql.Rows) ([]protocol.Event, error) {
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
