package ledger

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// TenantTills sums one tenant's tills as their heartbeats last told the
// hub, for the hub's gauges (hub/metrics.go): per tenant rather than per
// till, so that a scrape's series do not grow with the fleet.
type TenantTills struct {
	Tenant protocol.TenantID
	Tills  int64 // agents the ledger knows (a heartbeat or a fact)
	Stale  int64 // of which not heard from since the staleBefore given
	// OutboxDepth sums the outbox depths the tills last reported
	// (AgentState.OutboxDepth: sales not yet acknowledged); MaxOutbox is
	// the deepest.
	OutboxDepth int64
	MaxOutbox   int64
}

// TillsByTenant reads every tenant's TenantTills in one statement (one
// pass over ledger_agents; 10,000 tills cost about a millisecond, see
// hub BenchmarkScrape). A till is stale when the hub last heard from it
// before staleBefore, or never.
func (l *Ledger) TillsByTenant(ctx context.Context, staleBefore time.Time) ([]TenantTills, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT tenant, COUNT(*), SUM(seen_at < ?), SUM(outbox_depth), MAX(outbox_depth)
		FROM ledger_agents GROUP BY tenant ORDER BY tenant`, micros(staleBefore))
	if err != nil {
		return nil, wrap("tills", err)
	}
	defer rows.Close()
	var out []TenantTills
	for rows.Next() {
		var t TenantTills
		var tenant string
		if err := rows.Scan(&tenant, &t.Tills, &t.Stale, &t.OutboxDepth, &t.MaxOutbox); err != nil {
			return nil, wrap("tills", err)
		}
		t.Tenant = protocol.TenantID(tenant)
		out = append(out, t)
	}
	return out, wrap("tills", rows.Err())
}
