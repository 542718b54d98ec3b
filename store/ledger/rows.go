package ledger

import (
	"database/sql"
	"slices"
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
	qCustomersIn = `SELECT customer, points FROM ledger_customers WHERE tenant = ? AND customer IN (` + inList + `)`
	// qWatermarksIn also says whether anything is recorded after each
	// watermark (qAgentSeqs' three parts, as EXISTS): at a fleet's steady
	// state nothing is, and loadAgents then needs no qAgentSeqs per till.
	qWatermarksIn = `SELECT a.agent, a.watermark,
			EXISTS (SELECT 1 FROM ledger_journal j WHERE j.tenant = a.tenant AND j.agent = a.agent AND j.seq > a.watermark)
			OR EXISTS (SELECT 1 FROM ledger_quarantine q WHERE q.tenant = a.tenant AND q.agent = a.agent AND q.seq > a.watermark)
			OR EXISTS (SELECT 1 FROM ledger_journal r WHERE r.tenant = a.tenant AND r.ref_agent = a.agent AND r.ref_seq > a.watermark
				AND r.agent = r.ref_agent AND r.entry = 'rollback')
		FROM ledger_agents a WHERE a.tenant = ? AND a.agent IN (` + inList + `)`
	qDebtsIn = `SELECT customer FROM ledger_points_lots WHERE tenant = ? AND debt = 1 AND customer IN (` + inList + `)`
)

// upCustomerN is upCustomer for n rows, by row count.
// The rows are ledger_customer_rows' of kind 0 (ledger_024_customer_rows.sql).
var upCustomerN = upsertRowsN(`INSERT INTO ledger_customer_rows (tenant, customer, kind, n1) VALUES `, `(?, ?, 0, ?)`,
	` ON CONFLICT (tenant, customer, kind, k1, k2) DO UPDATE SET n1 = excluded.n1`)

// upPointsTotal adds a transaction's change of its customers' points to
// their tenant's total (ledger_026_points_totals.sql): one statement a
// tenant and transaction, where a trigger on every customer's row cost
// the drains ~5 µs a row.
const upPointsTotal = `INSERT INTO ledger_points_totals (tenant, points) VALUES (?, ?)
	ON CONFLICT (tenant) DO UPDATE SET points = points + excluded.points`

// upWatermarkN is upWatermark for n agents, by row count.
var upWatermarkN = upsertN(`INSERT INTO ledger_agents (tenant, agent, watermark, seen_at) VALUES `, 4,
	` ON CONFLICT (tenant, agent) DO UPDATE SET watermark = excluded.watermark, seen_at = excluded.seen_at`)

// upAllowanceN is upAllowance for n rows, by row count: a drain changes
// the allowance of each of its tills.
var upAllowanceN = upsertN(`INSERT INTO ledger_allowances (tenant, agent, campaign, grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount)
	VALUES `, 10, ` ON CONFLICT (tenant, agent, campaign) DO UPDATE SET grants = excluded.grants,
		granted_count = excluded.granted_count, granted_amount = excluded.granted_amount,
		returned_count = excluded.returned_count, returned_amount = excluded.returned_amount,
		used_count = excluded.used_count, used_amount = excluded.used_amount`)

// upPurchaseDayStores counts a new order (?4 its time, ?5 its day, ?6
// its value) in its customer's purchase day and in its first and last
// purchase per store (its store ?3 and the overall row, the empty store),
// in one statement (purchases.go). The rows are ledger_customer_rows':
// a day is kind 3 (k2 the day, n1 the value, n3 the orders), a store kind
// 2 (n1 first_at, n2 last_at, n3 orders).
const upPurchaseDayStores = `INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, k2, n1, n2, n3)
	VALUES (?1, ?2, 3, '', ?5, ?6, NULL, 1), (?1, ?2, 2, ?3, '', ?4, ?4, 1), (?1, ?2, 2, '', '', ?4, ?4, 1)
	ON CONFLICT (tenant, customer, kind, k1, k2) DO UPDATE SET
		n1 = CASE kind WHEN 3 THEN n1 + excluded.n1 ELSE min(n1, excluded.n1) END,
		n2 = CASE kind WHEN 3 THEN n2 ELSE max(n2, excluded.n2) END,
		n3 = n3 + 1`

// rowsStatements are this file's hot statements (hotStatements).
func rowsStatements() []string {
	qs := []string{qAllowancesIn, qCustomersIn, qWatermarksIn, qAgentSeqs, qDebtsIn}
	for _, n := range upsertChunks {
		qs = append(qs, upCustomerN[n], upWatermarkN[n], upAllowanceN[n])
	}
	return qs
}

// queryIn runs q (prefix arguments, then balanceChunk keys) over ids,
// chunk by chunk (a short chunk in the variant of q for the fewest keys
// that hold it, inChunk, padded with its last key), and hands each row
// to scan.
func (s *state) queryIn(q string, prefix []any, ids []string, scan func(*sql.Rows) error) error {
	return s.inChunks(q, prefix, ids, func(qc string, args []any) error {
		return s.querySQL(qc, args, func(rows *sql.Rows) error { return scan(rows) })
	})
}

// queryRows is queryIn whose scan takes only the row's Scan: on the
// drains' own connection its hot statements run without database/sql
// (drainraw.go), and scan must then not use the database.
func (s *state) queryRows(q string, prefix []any, ids []string, scan func(rowScanner) error) error {
	return s.inChunks(q, prefix, ids, func(qc string, args []any) error {
		return s.queryScan(qc, args, scan)
	})
}

// query runs q with args and hands each row to scan: without
// database/sql for a hot statement on the drains' own connection
// (drainraw.go; scan must then not use the database).
func (s *state) queryScan(q string, args []any, scan func(rowScanner) error) error {
	if s.raw != nil {
		var t0 time.Time
		if s.l.stmts.counting() {
			t0 = time.Now()
		}
		if ok, err := s.raw.query(s.txCtx, s.ctx, s.l, q, args, scan); ok {
			if !t0.IsZero() {
				s.l.stmts.note(q, t0) // stmtstats.go
			}
			return err
		}
	}
	return s.querySQL(q, args, func(rows *sql.Rows) error { return scan(rows) })
}

// querySQL runs q with args through database/sql and hands each row to
// scan.
func (s *state) querySQL(q string, args []any, scan func(*sql.Rows) error) error {
	if s.l.stmts.counting() {
		defer s.l.stmts.note(q, time.Now())
	}
	st, err := s.stmt(q)
	if err != nil {
		return err
	}
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
	return rows.Err()
}

// inChunks calls run with each chunk's statement and arguments (queryIn).
func (s *state) inChunks(q string, prefix []any, ids []string, run func(qc string, args []any) error) error {
	_, most := inChunk(q, min(len(ids), balanceChunk)) // the first chunk is the largest
	args := make([]any, len(prefix)+most)
	copy(args, prefix)
	for len(ids) > 0 {
		n := min(len(ids), balanceChunk)
		qc, c := inChunk(q, n) // inchunks.go: the statement for c >= n keys
		for i := range c {
			args[len(prefix)+i] = ids[min(i, n-1)]
		}
		ids = ids[n:]
		if err := run(qc, args[:len(prefix)+c]); err != nil {
			return err
		}
	}
	return nil
}

// prefetchAgentBalances loads, with one query per balanceChunk keys, the
// allowances of the tills whose redeems rs holds and the points balances
// of the customers whose earns and burns it holds, that this state has
// not loaded yet, and notes which earning customers have no debt lot
// (noDebt: their earns then skip qLotDebt). A key the query does not return has no row yet: its
// cell starts at zero, as allowance and customer would start it. A
// balance loaded and then not touched (a redeem voided on arrival) is
// not written back: flush writes changed cells only.
func (s *state) prefetchAgentBalances(rs []protocol.Redemption) error {
	type group struct{ tenant, campaign string }
	allows := map[group][]string{}
	custs, earns := map[string][]string{}, map[string][]string{}
	seenA, seenC, seenE := map[key3]bool{}, map[key2]bool{}, map[key2]bool{}
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
			if r.Kind == protocol.KindEarn && r.Points > 0 && !s.noDebt[k] && !seenE[k] {
				seenE[k] = true
				earns[k.tenant] = append(earns[k.tenant], k.id)
			}
		}
	}
	for t, ids := range earns {
		debts := map[string]bool{}
		err := s.queryRows(qDebtsIn, []any{t}, ids, func(rows rowScanner) error {
			var c string
			if err := rows.Scan(&c); err != nil {
				return err
			}
			debts[c] = true
			return nil
		})
		if err != nil {
			return err
		}
		if s.noDebt == nil {
			s.noDebt = map[key2]bool{}
		}
		for _, id := range ids {
			if !debts[id] {
				s.noDebt[key2{t, id}] = true
			}
		}
	}
	for g, ids := range allows {
		err := s.queryRows(qAllowancesIn, []any{g.tenant, g.campaign}, ids, func(rows rowScanner) error {
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
		err := s.queryRows(qCustomersIn, []any{t}, ids, func(rows rowScanner) error {
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

// agentMark is what loadAgents learned of an agent before its batches
// apply: its stored watermark, and whether every seq recorded after it is
// now in the state's seen set (the list was shorter than one page of
// qAfterWatermark), so that its seqs need no other read and its new
// watermark is computed without one.
type agentMark struct {
	wm    int64
	known bool
	found bool // qWatermarksIn returned the agent's row
	after bool // and something is recorded after its watermark
}

// loadAgents reads the stored watermarks of agents (each once), with one
// query per balanceChunk agents that also tells whether anything is
// recorded after each (a till's outbox is contiguous, so usually not),
// and for each agent with something after it or no row yet the seqs
// recorded after its watermark (qAgentSeqs) and, into fs.voided, the seqs after it that an earlier rollback
// names (seqs at or below it are recorded already: their batches are
// repeats, which no voiding changes). Every seq at or below a watermark is recorded (it is
// the contiguous end of what the journal and quarantine hold, and
// neither loses rows), so with the list complete the state knows each
// seq of the agent: markSeqs notes a batch's, advanceWatermarks computes
// the new watermark from them.
func (s *state) loadAgents(fs factSet, agents []key2) (map[key2]agentMark, error) {
	byTenant := map[string][]string{}
	for _, k := range agents {
		byTenant[k.tenant] = append(byTenant[k.tenant], k.id)
	}
	marks := make(map[key2]agentMark, len(agents))
	for t, ids := range byTenant {
		err := s.queryRows(qWatermarksIn, []any{t}, ids, func(rows rowScanner) error {
			var a string
			var wm int64
			var after bool
			if err := rows.Scan(&a, &wm, &after); err != nil {
				return err
			}
			marks[key2{t, a}] = agentMark{wm: wm, found: true, after: after}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	st, err := s.stmt(qAgentSeqs)
	if err != nil {
		return nil, err
	}
	for _, k := range agents {
		mk := marks[k]
		m := s.seen[k]
		if m == nil {
			m = map[uint64]bool{}
			s.seen[k] = m
		}
		if mk.found && !mk.after {
			mk.known = true // nothing after the watermark: nothing to list
			marks[k] = mk
			continue
		}
		rows, err := st.QueryContext(s.ctx, k.tenant, k.id, mk.wm)
		if err != nil {
			return nil, err
		}
		n := 0
		var voided []uint64
		for rows.Next() {
			var kind, seq int64
			if err := rows.Scan(&kind, &seq); err != nil {
				rows.Close()
				return nil, err
			}
			if kind == 0 {
				m[uint64(seq)] = true
			} else {
				voided = append(voided, uint64(seq))
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		mk.known = n < afterWatermarkPage
		marks[k] = mk
		if mk.known && len(voided) > 0 {
			if fs.voided[k] == nil {
				fs.voided[k] = map[uint64]bool{}
			}
			for _, seq := range voided {
				fs.voided[k][seq] = true
			}
		}
	}
	return marks, nil
}

// afterWatermarkPage is qAfterWatermark's and qAgentSeqs' LIMIT.
const afterWatermarkPage = 4096

// qAgentSeqs is what loadAgents reads of an agent in one statement: the
// seqs recorded after its watermark (kind 0: journal, quarantine) and the
// seqs after it that a rollback of the agent recorded before them names
// (kind 1: loadVoided's rows, which a drain's batches of the agent then
// need not read each).
const qAgentSeqs = `SELECT 0, seq FROM ledger_journal WHERE tenant = ?1 AND agent = ?2 AND seq > ?3
	UNION ALL SELECT 0, seq FROM ledger_quarantine WHERE tenant = ?1 AND agent = ?2 AND seq > ?3
	UNION ALL SELECT 1, ref_seq FROM ledger_journal WHERE tenant = ?1 AND ref_agent = ?2 AND ref_seq > ?3 AND agent = ref_agent AND entry = 'rollback'
	LIMIT 4096` // afterWatermarkPage

// markSeqs notes, for an agent whose recorded seqs loadAgents listed
// completely, which of rs's seqs (and of the quarantined facts' of the
// same agent) are recorded: those at or below the watermark and those
// listed. It is what prefetch learns with a query.
func (s *state) markSeqs(k key2, mk agentMark, rs []protocol.Redemption, bad []Quarantined) {
	m := s.seen[k]
	note := func(seq uint64) {
		if _, ok := m[seq]; !ok {
			m[seq] = seq <= uint64(mk.wm)
		}
	}
	for _, r := range rs {
		note(r.ID.Seq)
	}
	for _, q := range bad {
		if string(q.Tenant) == k.tenant && string(q.Agent) == k.id {
			note(q.Seq)
		}
	}
}

// advanceWatermarks is advanceWatermark for the agents of a drain (each
// once), after their batches applied: for an agent loadAgents listed
// completely the new watermark and the seqs beyond it come from the
// state's seen set (the seqs recorded before, listed, and those recorded
// now), for the others from qAfterWatermark; the watermarks that moved
// are written with one multi-row upsert.
func advanceWatermarks(s *state, agents []key2, marks map[key2]agentMark, now time.Time) (map[key2]protocol.Ack, error) {
	acks := make(map[key2]protocol.Ack, len(agents))
	var up []any
	at := micros(now)
	for _, k := range agents {
		mk := marks[k]
		var wm int64
		var beyond []uint64
		if mk.known {
			wm, beyond = watermarkSeen(s.seen[k], mk.wm)
		} else {
			var err error
			if wm, beyond, err = watermarkFrom(s, protocol.TenantID(k.tenant), protocol.AgentID(k.id), mk.wm); err != nil {
				return nil, err
			}
		}
		if wm != mk.wm {
			up = append(up, k.tenant, k.id, wm, at)
		}
		acks[k] = protocol.Ack{Watermark: uint64(wm), Beyond: beyond}
	}
	if err := s.execRows(upWatermarkN, 4, up); err != nil {
		return nil, err
	}
	return acks, nil
}

// watermarkSeen is watermarkFrom over a complete seen set m: the
// contiguous end from wm on, and the (at most MaxAckBeyond, smallest)
// recorded seqs beyond it, sorted.
func watermarkSeen(m map[uint64]bool, wm int64) (int64, []uint64) {
	for m[uint64(wm+1)] {
		wm++
	}
	var beyond []uint64
	for seq, rec := range m {
		if rec && seq > uint64(wm) {
			beyond = append(beyond, seq)
		}
	}
	slices.Sort(beyond)
	if len(beyond) > MaxAckBeyond {
		beyond = beyond[:MaxAckBeyond:MaxAckBeyond]
	}
	return wm, beyond
}
