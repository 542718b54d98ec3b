package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// SegmentFacts is what the ledger needs of the catalog to recompute a
// customer's segments on each of its facts (ledger_011): the tenant's
// segment definitions and the customer's attributes. Optional
// (Options.Segments): without it the ledger keeps the purchase history
// and leaves the segments to the periodic run.
type SegmentFacts interface {
	SegmentDefs(ctx context.Context, tenant protocol.TenantID) ([]segment.Definition, error)
	CustomerAttributes(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (map[string]string, error)
}

// Purchase is one order of a customer's purchase history (segment.Purchase).
type Purchase = segment.Purchase

const usPerDay = int64(24 * time.Hour / time.Microsecond)

// The purchase statements: every one a primary-key or index lookup, or a
// range of at most a window's days.
const (
	// A purchase and a purchase day are rows of ledger_customer_rows
	// (kinds 4 and 3, ledger_024_customer_rows.sql); the reads go through
	// the views of the old tables' names.
	insPurchase = `INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, k2, n1, n2, s1, s2, n3) VALUES (?, ?, 4, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, customer, kind, k1, k2) DO NOTHING`
	qSpendDays  = `SELECT COALESCE(SUM(value), 0) FROM ledger_purchase_days WHERE tenant = ? AND customer = ? AND day >= ?`
	qSpendEdge  = `SELECT COALESCE(SUM(value), 0) FROM ledger_purchases WHERE tenant = ? AND customer = ? AND at >= ? AND at < ?`
	qLastAt     = `SELECT last_at FROM ledger_purchase_stores WHERE tenant = ? AND customer = ? AND store = ?`
	qSegsOf     = `SELECT segment FROM ledger_customer_segments WHERE tenant = ? AND customer = ? ORDER BY segment`
	insSegOf    = `INSERT INTO ledger_customer_segments (tenant, customer, segment, since) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
	delSegOf    = `DELETE FROM ledger_customer_segments WHERE tenant = ? AND customer = ? AND segment = ?`
	qPurchases  = `SELECT store, txn, at, value, currency, agent, seq FROM ledger_purchases WHERE tenant = ? AND customer = ? ORDER BY at DESC LIMIT ?`
	qSegMembers = `SELECT customer FROM ledger_customer_segments WHERE tenant = ? AND segment = ? AND customer > ? ORDER BY customer LIMIT ?`
)

// purchaseStatements are the ones applyOne runs (hotStatements).
var purchaseStatements = []string{insPurchase, upPurchaseDayStores, qSpendDays, qSpendEdge, qLastAt, qSegsOf, insSegOf, delSegOf}

// querier is a transaction's or the pool's statements.
type querier interface {
	queryRow(q string, dest []any, args ...any) error
	query(q string, args ...any) (*sql.Rows, error)
	exec(q string, args ...any) (sql.Result, error)
}

// dbq runs statements on the pool or a transaction of its own.
type dbq struct {
	ctx context.Context
	db  interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}
}

func (d dbq) queryRow(q string, dest []any, args ...any) error {
	return d.db.QueryRowContext(d.ctx, q, args...).Scan(dest...)
}
func (d dbq) query(q string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(d.ctx, q, args...)
}
func (d dbq) exec(q string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(d.ctx, q, args...)
}

func (s *state) query(q string, args ...any) (*sql.Rows, error) {
	if s.l.stmts.counting() {
		defer s.l.stmts.note(q, time.Now()) // the query, not the reading of its rows
	}
	st, err := s.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(s.ctx, args...)
}

// recordPurchase adds r's order to its customer's purchase history, once
// per (store, transaction): the first fact of an order that names a
// customer records it (a till's redeem, earn or burn; the hub's facts of
// an online basket). A rollback does not remove it: the customer came and
// bought (a refund that should not count is a documented limit). On a new
// purchase the customer's segments are recomputed in the same transaction.
func (l *Ledger) recordPurchase(s *state, r *protocol.Redemption, now time.Time) error {
	if r.Customer == "" || r.Kind == protocol.KindRollback {
		return nil
	}
	txn := r.TxnID
	if txn == "" {
		txn = r.OrderID
	}
	if txn == "" {
		return nil
	}
	at := now
	if r.ID.Agent != protocol.HubSender && r.HLC != 0 {
		if t := l.hlcTime(r.HLC); t.Before(now) {
			at = t // a till's clock, never ahead of the hub's
		}
	}
	pk := purchaseKey{string(r.Tenant), string(r.Customer), string(r.Store), txn}
	if s.bought[pk] {
		return nil // an earlier fact of the order, in this transaction
	}
	if err := s.savepoint(); err != nil {
		return err
	}
	atUS := micros(at)
	res, err := s.exec(insPurchase, pk.tenant, pk.customer, pk.store, txn, atUS, r.OrderTot, string(r.Currency), string(r.ID.Agent), int64(r.ID.Seq))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	s.markBought(pk)
	if n == 0 {
		return nil
	}
	if _, err := s.exec(upPurchaseDayStores, string(r.Tenant), string(r.Customer), string(r.Store), atUS, // rows.go
		floorDiv(atUS, usPerDay), r.OrderTot); err != nil {
		return err
	}
	if l.segs == nil {
		return nil
	}
	defs, err := s.segmentDefs(l.segs, r.Tenant)
	if err != nil || len(defs) == 0 {
		return err
	}
	attrs, err := l.segs.CustomerAttributes(s.ctx, r.Tenant, r.Customer)
	if err != nil {
		return fmt.Errorf("segments: customer attributes: %w", err)
	}
	q := segment.Need(defs, now)
	h, err := history(s, r.Tenant, r.Customer, q)
	if err != nil {
		return err
	}
	_, err = setSegments(s, r.Tenant, r.Customer, segment.Of(defs, q, h, attrs, now), now)
	return err
}

// markBought records that pk's row is in the transaction; the online
// writer's undo of a basket (whose savepoint takes the row back) forgets it.
func (s *state) markBought(pk purchaseKey) {
	if s.bought == nil {
		s.bought = map[purchaseKey]bool{}
	}
	s.bought[pk] = true
	if s.epoch != 0 {
		s.undoLog = append(s.undoLog, func() { delete(s.bought, pk) })
	}
}

// segmentDefs is the tenant's definitions, read once per transaction.
func (s *state) segmentDefs(f SegmentFacts, t protocol.TenantID) ([]segment.Definition, error) {
	if d, ok := s.segDefs[t]; ok {
		return d, nil
	}
	d, err := f.SegmentDefs(s.ctx, t)
	if err != nil {
		return nil, fmt.Errorf("segments: definitions: %w", err)
	}
	if s.segDefs == nil {
		s.segDefs = map[protocol.TenantID][]segment.Definition{}
	}
	s.segDefs[t] = d
	return d, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// history answers a segment query from the aggregates: per window, the
// day buckets after its first UTC day and that day's purchases from the
// window's first instant on; bounded by the window's days.
func history(qr querier, t protocol.TenantID, cu protocol.CustomerID, q segment.Query) (segment.History, error) {
	var h segment.History
	scalar := func(q string, args ...any) (int64, bool, error) {
		var v int64
		err := qr.queryRow(q, []any{&v}, args...)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		return v, err == nil, err
	}
	last, ok, err := scalar(qLastAt, string(t), string(cu), "")
	if err != nil {
		return h, err
	}
	if !ok {
		h.Spend = make([]int64, len(q.SpendSince))
		return h, nil // never bought
	}
	h.Last = time.UnixMicro(last)
	for _, since := range q.SpendSince {
		us := micros(since)
		day := floorDiv(us, usPerDay)
		full := day
		var edge int64
		if us != day*usPerDay {
			full = day + 1
			if edge, _, err = scalar(qSpendEdge, string(t), string(cu), us, full*usPerDay); err != nil {
				return h, err
			}
		}
		v, _, err := scalar(qSpendDays, string(t), string(cu), full)
		if err != nil {
			return h, err
		}
		h.Spend = append(h.Spend, v+edge)
	}
	for _, st := range q.Stores {
		v, ok, err := scalar(qLastAt, string(t), string(cu), string(st))
		if err != nil {
			return h, err
		}
		if ok {
			if h.Stores == nil {
				h.Stores = map[protocol.StoreID]time.Time{}
			}
			h.Stores[st] = time.UnixMicro(v)
		}
	}
	return h, nil
}

// setSegments makes the customer's stored segments segs, writing only the
// changes; it reports whether any. Idempotent.
func setSegments(qr querier, t protocol.TenantID, cu protocol.CustomerID, segs []string, now time.Time) (bool, error) {
	cur, err := segmentsOf(qr, t, cu)
	if err != nil {
		return false, err
	}
	changed := false
	for _, g := range cur {
		if !slices.Contains(segs, g) {
			if _, err := qr.exec(delSegOf, string(t), string(cu), g); err != nil {
				return false, err
			}
			changed = true
		}
	}
	for _, g := range segs {
		if !slices.Contains(cur, g) {
			if _, err := qr.exec(insSegOf, string(t), string(cu), g, micros(now)); err != nil {
				return false, err
			}
			changed = true
		}
	}
	return changed, nil
}

func segmentsOf(qr querier, t protocol.TenantID, cu protocol.CustomerID) ([]string, error) {
	rows, err := qr.query(qSegsOf, string(t), string(cu))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// PurchaseHistory answers a segment query of one customer from the
// purchase aggregates (bounded lookups, whatever the history).
func (l *Ledger) PurchaseHistory(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, q segment.Query) (segment.History, error) {
	h, err := history(dbq{ctx, l.db}, tenant, customer, q)
	return h, wrap("purchase history", err)
}

// Purchases lists a customer's most recent purchases, newest first, at
// most limit (support's customer history); limit <= 0: all of them (the
// customer's data export).
func (l *Ledger) Purchases(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int) ([]Purchase, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := l.db.QueryContext(ctx, qPurchases, string(tenant), string(customer), limit)
	if err != nil {
		return nil, wrap("purchases", err)
	}
	defer rows.Close()
	var out []Purchase
	for rows.Next() {
		var p Purchase
		var at, seq int64
		var st, cur, ag string
		if err := rows.Scan(&st, &p.Txn, &at, &p.Value, &cur, &ag, &seq); err != nil {
			return nil, wrap("purchases", err)
		}
		p.Store, p.At, p.Currency = protocol.StoreID(st), time.UnixMicro(at).UTC(), protocol.Currency(cur)
		p.Fact = protocol.RedemptionID{Agent: protocol.AgentID(ag), Seq: uint64(seq)}
		out = append(out, p)
	}
	return out, wrap("purchases", rows.Err())
}

// CustomerSegments is the segments the customer is in as last computed.
func (l *Ledger) CustomerSegments(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) ([]string, error) {
	s, err := segmentsOf(dbq{ctx, l.db}, tenant, customer)
	return s, wrap("customer segments", err)
}

// SegmentMembers pages through a segment's customers in ID order, after
// the given one ("" to start), at most limit.
func (l *Ledger) SegmentMembers(ctx context.Context, tenant protocol.TenantID, seg string, after protocol.CustomerID, limit int) ([]protocol.CustomerID, error) {
	rows, err := l.db.QueryContext(ctx, qSegMembers, string(tenant), seg, string(after), limit)
	if err != nil {
		return nil, wrap("segment members", err)
	}
	defer rows.Close()
	var out []protocol.CustomerID
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, wrap("segment members", err)
		}
		out = append(out, protocol.CustomerID(c))
	}
	return out, wrap("segment members", rows.Err())
}

// SetSegments stores the segments of several customers of a tenant in one
// transaction, writing only the changes; it returns how many customers
// changed. Idempotent: the periodic run calls it with what it computed.
func (l *Ledger) SetSegments(ctx context.Context, tenant protocol.TenantID, us []segment.Update, now time.Time) (int, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, wrap("set segments: begin", err)
	}
	defer tx.Rollback()
	n := 0
	for _, u := range us {
		ch, err := setSegments(dbq{ctx, tx}, tenant, u.Customer, u.Segments, now)
		if err != nil {
			return 0, wrap("set segments", err)
		}
		if ch {
			n++
		}
	}
	return n, wrap("set segments: commit", tx.Commit())
}

// SnapshotSegments lists the stored segments of the customers in any of
// segs, by customer ascending, at most limit customers (the tills'
// snapshots, snapshot.Snapshot.Segments). One index range per segment.
func (l *Ledger) SnapshotSegments(ctx context.Context, tenant protocol.TenantID, segs []string, limit int) ([]snapshot.CustomerSegments, error) {
	by := map[protocol.CustomerID][]string{}
	for _, g := range segs {
		after := protocol.CustomerID("")
		for {
			cs, err := l.SegmentMembers(ctx, tenant, g, after, 1000)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				by[c] = append(by[c], g)
			}
			if len(cs) < 1000 || len(by) > limit {
				break
			}
			after = cs[len(cs)-1]
		}
	}
	out := make([]snapshot.CustomerSegments, 0, len(by))
	for c, gs := range by {
		slices.Sort(gs)
		out = append(out, snapshot.CustomerSegments{Customer: c, Segments: slices.Compact(gs)})
	}
	slices.SortFunc(out, func(a, b snapshot.CustomerSegments) int {
		return strings.Compare(string(a.Customer), string(b.Customer))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
