package ledger

import (
	"database/sql"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Fewer statements per fact on the shared write path (issue 10): an ingest
// drain applies about 14 till messages of 1-3 facts in one transaction,
// and a statement through database/sql and the driver costs about as
// much as the B-tree work of a small row. So what the drain's facts read
// by key (their balances, their tills' allowances and watermarks) is read
// with one IN query per balanceChunk keys for the whole drain, and what
// it writes back per row (customers, watermarks, events) goes in
// multi-row statements (upsertN, execRows).

// inList is balanceChunk placeholders, for the IN queries.
var inList = strings.TrimSuffix(strings.Repeat("?, ", balanceChunk), ", ")

var (
	qAllowancesIn = `SELECT agent, grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount
		FROM ledger_allowances WHERE tenant = ? AND campaign = ? AND agent IN (` + inList + `)`
	qCustomersIn  = `SELECT customer, points FROM ledger_customers WHERE tenant = ? AND customer IN (` + inList + `)`
	qWatermarksIn = `SELECT agent, watermark FROM ledger_agents WHERE tenant = ? AND agent IN (` + inList + `)`
)

// upCustomerN is upCustomer for n rows, by row count.
var upCustomerN = upsertN(`INSERT INTO ledger_customers (tenant, customer, points) VALUES `, 3,
	` ON CONFLICT (tenant, customer) DO UPDATE SET points = excluded.points`)

// upWatermarkN is upWatermark for n agents, by row count.
var upWatermarkN = upsertN(`INSERT INTO ledger_agents (tenant, agent, watermark, seen_at) VALUES `, 4,
	` ON CONFLICT (tenant, agent) DO UPDATE SET watermark = excluded.watermark, seen_at = excluded.seen_at`)

// rowsStatements are this file's hot statements (hotStatements).
func rowsStatements() []string {
	qs := []string{qAllowancesIn, qCustomersIn, qWatermarksIn}
	for _, n := range upsertChunks {
		qs = append(qs, upCustomerN[n], upWatermarkN[n])
	}
	return qs
}

// queryIn runs q (prefix arguments, then balanceChunk keys) over ids,
// chunk by chunk (a short chunk padded with its last key), and hands each
// row to scan.
func (s *state) queryIn(q string, prefix []any, ids []string, scan func(*sql.Rows) error) error {
	st, err := s.stmt(q)
	if err != nil {
		return err
	}
	args := make([]any, len(prefix)+balanceChunk)
	copy(args, prefix)
	for len(ids) > 0 {
		n := min(len(ids), balanceChunk)
		for i := range balanceChunk {
			args[len(prefix)+i] = ids[min(i, n-1)]
		}
		ids = ids[n:]
		rows, err := st.QueryContext(s.ctx, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// prefetchAgentBalances loads, with one query per balanceChunk keys, the
// allowances of the tills whose redeems rs holds and the points balances
// of the customers whose earns and burns it holds, that this state has
// not loaded yet. A key the query does not return has no row yet: its
// cell starts at zero, as allowance and customer would start it. A
// balance loaded and then not touched (a redeem voided on arrival) is
// not written back: flush writes changed cells only.
func (s *state) prefetchAgentBalances(rs []protocol.Redemption) error {
	type group struct{ tenant, campaign string }
	allows := map[group][]string{}
	custs := map[string][]string{}
	seenA, seenC := map[key3]bool{}, map[key2]bool{}
	for _, r := range rs {
		if r.Kind == protocol.KindRedeem && r.Campaign != "" && r.ID.Agent != protocol.HubSender {
			k := key3{string(r.Tenant), string(r.ID.Agent), string(r.Campaign)}
			if _, ok := s.allows[k]; !ok && !seenA[k] {
				seenA[k] = true
				g := group{k.tenant, k.b}
				allows[g] = append(allows[g], k.a)
			}
		}
		if r.Customer != "" && r.Points != 0 {
			k := key2{string(r.Tenant), string(r.Customer)}
			if _, ok := s.custs[k]; !ok && !seenC[k] {
				seenC[k] = true
				custs[k.tenant] = append(custs[k.tenant], k.id)
			}
		}
	}
	for g, ids := range allows {
		err := s.queryIn(qAllowancesIn, []any{g.tenant, g.campaign}, ids, func(rows *sql.Rows) error {
			var a string
			var b allowBal
			if err := rows.Scan(&a, &b.grants, &b.grantedCount, &b.grantedAmount, &b.returnedCount, &b.returnedAmount, &b.usedCount, &b.usedAmount); err != nil {
				return err
			}
			s.allows[key3{g.tenant, a, g.campaign}] = &cell[allowBal]{v: b, orig: b}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, ok := s.allows[key3{g.tenant, id, g.campaign}]; !ok {
				s.allows[key3{g.tenant, id, g.campaign}] = &cell[allowBal]{}
			}
		}
	}
	for t, ids := range custs {
		err := s.queryIn(qCustomersIn, []any{t}, ids, func(rows *sql.Rows) error {
			var c string
			var v int64
			if err := rows.Scan(&c, &v); err != nil {
				return err
			}
			s.custs[key2{t, c}] = &cell[int64]{v: v, orig: v}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, ok := s.custs[key2{t, id}]; !ok {
				s.custs[key2{t, id}] = &cell[int64]{}
			}
		}
	}
	return nil
}

// advanceWatermarks is advanceWatermark for several agents (each once):
// their stored watermarks read with one query per balanceChunk agents,
// and the ones that moved written with one multi-row upsert.
func advanceWatermarks(s *state, agents []key2, now time.Time) (map[key2]protocol.Ack, error) {
	byTenant := map[string][]string{}
	for _, k := range agents {
		byTenant[k.tenant] = append(byTenant[k.tenant], k.id)
	}
	stored := make(map[key2]int64, len(agents))
	for t, ids := range byTenant {
		err := s.queryIn(qWatermarksIn, []any{t}, ids, func(rows *sql.Rows) error {
			var a string
			var wm int64
			if err := rows.Scan(&a, &wm); err != nil {
				return err
			}
			stored[key2{t, a}] = wm
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	acks := make(map[key2]protocol.Ack, len(agents))
	var up []any
	at := micros(now)
	for _, k := range agents {
		orig := stored[k]
		wm, beyond, err := watermarkFrom(s, protocol.TenantID(k.tenant), protocol.AgentID(k.id), orig)
		if err != nil {
			return nil, err
		}
		if wm != orig {
			up = append(up, k.tenant, k.id, wm, at)
		}
		acks[k] = protocol.Ack{Watermark: uint64(wm), Beyond: beyond}
	}
	if err := s.execRows(upWatermarkN, 4, up); err != nil {
		return nil, err
	}
	return acks, nil
}
