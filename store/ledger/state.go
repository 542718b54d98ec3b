package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/protocol/tiers"
)

// The statements of the apply path, prepared once per connection (see
// hotStatements).
const (
	// A seq is recorded once it is in the journal or in quarantine.
	qRecorded = `SELECT (SELECT COUNT(*) FROM ledger_journal WHERE tenant = ?1 AND agent = ?2 AND seq = ?3) +
		(SELECT COUNT(*) FROM ledger_quarantine WHERE tenant = ?1 AND agent = ?2 AND seq = ?3)`
	qPrefetch = `SELECT seq FROM ledger_journal WHERE tenant = ?1 AND agent = ?2 AND seq BETWEEN ?3 AND ?4
		UNION ALL SELECT seq FROM ledger_quarantine WHERE tenant = ?1 AND agent = ?2 AND seq BETWEEN ?3 AND ?4`
	qCampaign  = `SELECT count, discount, order_value FROM ledger_campaigns WHERE tenant = ? AND campaign = ?`
	qCode      = `SELECT uses, last_agent, last_seq FROM ledger_codes WHERE tenant = ? AND code = ?`
	qCard      = `SELECT spent, last_agent, last_seq FROM ledger_giftcards WHERE tenant = ? AND code = ?`
	qCustomer  = `SELECT points FROM ledger_customers WHERE tenant = ? AND customer = ?`
	qCustCamp  = `SELECT count, last_agent, last_seq FROM ledger_customer_campaigns WHERE tenant = ? AND customer = ? AND campaign = ?`
	qAllowance = `SELECT grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount
		FROM ledger_allowances WHERE tenant = ? AND agent = ? AND campaign = ?`
	upCampaign = `INSERT INTO ledger_campaigns (tenant, campaign, count, discount, order_value) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, campaign) DO UPDATE SET count = excluded.count, discount = excluded.discount, order_value = excluded.order_value`
	upCode = `INSERT INTO ledger_codes (tenant, code, uses, last_agent, last_seq) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant, code) DO UPDATE SET uses = excluded.uses, last_agent = excluded.last_agent, last_seq = excluded.last_seq`
	upCard = `INSERT INTO ledger_giftcards (tenant, code, spent, last_agent, last_seq) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant, code) DO UPDATE SET spent = excluded.spent, last_agent = excluded.last_agent, last_seq = excluded.last_seq`
)

// Keys of the balance tables.
type (
	key2 struct{ tenant, id string }
	key3 struct{ tenant, a, b string }
)

type campBal struct{ count, discount, orderValue int64 }

type allowBal struct {
	grants, grantedCount, grantedAmount, returnedCount, returnedAmount, usedCount, usedAmount int64
}

func (a allowBal) outstandingCount() int64 { return a.grantedCount - a.returnedCount - a.usedCount }
func (a allowBal) outstandingAmount() int64 {
	return a.grantedAmount - a.returnedAmount - a.usedAmount
}

// cell is a balance loaded from its table inside the write transaction;
// orig tells flush whether it changed. Codes, gift cards and customer
// campaigns also keep last, the last redemption that counted against them
// (the other side of a conflict; zero Agent: none).
type cell[T comparable] struct {
	v, orig        T
	last, lastOrig protocol.RedemptionID
	epoch          uint64 // the undo epoch this cell was logged in (see logCell)
}

func (c *cell[T]) changed() bool { return c.v != c.orig || c.last != c.lastOrig }

// lastID is a last_agent, last_seq pair as stored (NULLs: none).
func lastID(agent sql.NullString, seq sql.NullInt64) protocol.RedemptionID {
	if !agent.Valid || !seq.Valid {
		return protocol.RedemptionID{}
	}
	return protocol.RedemptionID{Agent: protocol.AgentID(agent.String), Seq: uint64(seq.Int64)}
}

// lastArgs binds a last redemption (NULLs for none).
func lastArgs(id protocol.RedemptionID) (agent, seq any) {
	if id.Agent == "" {
		return nil, nil
	}
	return string(id.Agent), int64(id.Seq)
}

// state holds the balances one transaction touches, loaded lazily and
// written back once at the end, so that a batch of N redemptions costs N
// journal inserts plus one upsert per distinct balance row.
type state struct {
	l   *Ledger
	ctx context.Context
	tx  *sql.Tx
	// raw runs the hot writes on the drains' own connection without
	// database/sql (drainraw.go), inside tx, begun with txCtx; nil for
	// any other transaction.
	raw       *rawStmts
	txCtx     context.Context
	camps     map[key2]*cell[campBal]
	codes     map[key2]*cell[int64]
	cards     map[key2]*cell[int64]
	custs     map[key2]*cell[int64]
	custCamps map[key3]*cell[int64]
	custDelta map[key3]*cell[int64] // counts added blind (customerCampaignAdd)
	allows    map[key3]*cell[allowBal]
	stmts     map[string]*sql.Stmt     // bound to this transaction
	journal   []any                    // buffered journal rows, journalArity values each
	full      [][]any                  // buffered chunks of journalChunks[0] rows
	events    []eventRow               // buffered events (events.go)
	seen      map[key2]map[uint64]bool // redemption seqs met in this transaction
	// The undo log of the online writer, which records several baskets
	// in one state: while epoch is non-zero every cell a basket touches
	// and every seq it marks is logged, and undo puts them back.
	epoch   uint64
	undoLog []func()
	// pending holds the hub's redemptions recorded in this state and not
	// yet in the journal, by transaction id (findTxn).
	pending map[key2][]protocol.Redemption
	resv    map[key2]reservedSum // storedReserved
	sp      savepoint            // the online writer's basket savepoint
	// spEarlier holds the earlier baskets' journal rows written inside
	// the open basket savepoint (flushBasketJournal).
	spEarlier []any
	mark      [2]int                                     // journal position at begin: len(full), len(journal)
	segDefs   map[protocol.TenantID][]segment.Definition // segmentDefs, per transaction (purchases.go)
	// tierProgs caches the tenants' tier programmes read in this
	// transaction (nil: none).
	tierProgs map[protocol.TenantID]*tiers.Program
	// bought holds the orders whose purchase row this transaction wrote
	// or found (recordPurchase): the basket's other facts of the same
	// order skip the INSERT that would do nothing.
	bought map[purchaseKey]bool
	// noDebt holds customers known to have no debt lot in this
	// transaction (prefetchAgentBalances), whose earns need not look for
	// one; creating a debt lot takes the customer out (lots.go).
	noDebt map[key2]bool
	// expiredAt holds, per customer, the latest now at which expireDue
	// expired the due lots in this transaction (lots.go).
	expiredAt map[key2]int64
	// lotsRead is the live lots expireDue read last (lots.go).
	lotsRead *lotsRead
	// txns holds the hub's journal rows by transaction id as the online
	// writer's group prefetch loaded them (prefetchTxns); a key present
	// with no rows: none.
	txns map[key2][]protocol.Redemption
}

// purchaseKey is a row of ledger_purchases.
type purchaseKey struct{ tenant, customer, store, txn string }

// savepoint is the online writer's savepoint of one basket, opened lazily
// before the basket's first write to the database.
type savepoint struct {
	armed bool // open it before the first write (the online writer)
	open  bool
	// optimistic: the basket runs without a savepoint (optimistic.go);
	// the first write only sets wrote, and a refusal after it has the
	// writer record the group again, with savepoints.
	optimistic bool
	wrote      bool
}

// savepoint opens the basket's savepoint if it is due and not open yet.
// Every write to the database a basket may make before its last step
// calls it first.
func (s *state) savepoint() error {
	if s.sp.open || !s.sp.armed {
		return nil
	}
	if s.sp.optimistic {
		s.sp.wrote = true
		return nil
	}
	if _, err := s.tx.ExecContext(s.ctx, `SAVEPOINT basket`); err != nil {
		return err
	}
	s.sp.open = true
	return nil
}

// begin starts logging changes for undo (one basket of the online writer).
func (s *state) begin() {
	s.epoch++
	s.undoLog = s.undoLog[:0]
	s.mark = [2]int{len(s.full), len(s.journal)}
}

// commit ends logging: the changes since begin stay.
func (s *state) commit() {
	s.undoLog = s.undoLog[:0]
	s.epoch++
}

// undo reverts every cell, seq mark and journal row since begin. The
// database side (conflict rows) is the caller's savepoint's job.
func (s *state) undo() {
	s.lotsChanged()
	for i := len(s.undoLog) - 1; i >= 0; i-- {
		s.undoLog[i]()
	}
	if len(s.full) > s.mark[0] { // a chunk was set aside since begin
		s.journal = s.full[s.mark[0]]
		clear(s.full[s.mark[0]:])
		s.full = s.full[:s.mark[0]]
	}
	if len(s.journal) >= s.mark[1] {
		clear(s.journal[s.mark[1]:])
		s.journal = s.journal[:s.mark[1]]
	}
	s.commit()
}

// pendTxn notes a redemption of the hub recorded in this state, for
// findTxn, until the state is flushed.
func (s *state) pendTxn(r protocol.Redemption, basket int) {
	if r.TxnID == "" {
		return
	}
	if s.pending == nil {
		s.pending = map[key2][]protocol.Redemption{}
	}
	k := key2{string(r.Tenant), r.TxnID}
	prev := s.pending[k]
	if prev == nil {
		prev = make([]protocol.Redemption, 0, basket) // the basket's facts, at most: one allocation
	}
	// Appended in place: an undo puts back prev, shorter, whose elements
	// this append does not change.
	s.pending[k] = append(prev, r)
	if s.epoch != 0 {
		s.undoLog = append(s.undoLog, func() {
			if len(prev) == 0 {
				delete(s.pending, k)
			} else {
				s.pending[k] = prev
			}
		})
	}
}

// logCell records c's value for undo, once per basket.
func logCell[T comparable](s *state, c *cell[T]) *cell[T] {
	if s.epoch != 0 && c.epoch != s.epoch {
		c.epoch = s.epoch
		v, last := c.v, c.last
		s.undoLog = append(s.undoLog, func() { c.v, c.last = v, last })
	}
	return c
}

func (l *Ledger) newState(ctx context.Context, tx *sql.Tx) *state {
	return &state{
		l: l, ctx: ctx, tx: tx,
		camps:     map[key2]*cell[campBal]{},
		codes:     map[key2]*cell[int64]{},
		cards:     map[key2]*cell[int64]{},
		custs:     map[key2]*cell[int64]{},
		custCamps: map[key3]*cell[int64]{},
		allows:    map[key3]*cell[allowBal]{},
		stmts:     map[string]*sql.Stmt{},
		seen:      map[key2]map[uint64]bool{},
	}
}

// queueJournal buffers one journal row. Every journalChunks[0] rows the
// buffer is set aside whole as the arguments of one INSERT, so that a
// transaction of thousands of rows never copies a growing buffer.
func (s *state) queueJournal(args ...any) {
	if s.journal == nil {
		s.journal = (*journalBufs.Get().(*[]any))[:0]
	}
	s.journal = append(s.journal, args...)
	if len(s.journal) == journalChunks[0]*journalArity {
		s.full = append(s.full, s.journal)
		s.journal = nil
	}
}

// flushJournal writes the buffered journal rows, in chunks of
// journalChunks rows. In the middle of an online writer's basket (a
// query that must see the journal: a tier measure on spend, a gift
// card's first sale) the rows of the group's earlier baskets go before
// the basket's savepoint and this basket's after it, so that a refused
// basket's ROLLBACK TO drops its own rows and only those
// (flushBasketJournal).
func (s *state) flushJournal() error {
	if s.sp.armed {
		return s.flushBasketJournal()
	}
	for i, args := range s.full {
		if _, err := s.exec(insertJournal[journalChunks[0]], args...); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		s.full[i] = nil
	}
	s.full = s.full[:0]
	if err := s.writeJournal(s.journal); err != nil {
		return err
	}
	clear(s.journal) // drop the references for the collector
	s.journal = s.journal[:0]
	return nil
}

// flushBasketJournal is flushJournal in the middle of a basket of the
// online writer. The buffer holds the rows of the group's earlier
// baskets (before s.mark), which this basket's refusal must keep, and
// this basket's own (after s.mark), which it must drop. With the
// savepoint not open yet the earlier rows are written first, outside
// it; with it open (the basket wrote before) they are written inside it
// and kept in s.spEarlier, which a ROLLBACK TO queues again
// (requeueEarlier). The buffer is empty after, and s.mark its start.
func (s *state) flushBasketJournal() error {
	m0, m1 := s.mark[0], s.mark[1]
	cur := s.journal // the buffer s.mark[1] indexes
	if len(s.full) > m0 {
		cur = s.full[m0]
	}
	var earlier, own []any
	for _, c := range s.full[:min(m0, len(s.full))] {
		earlier = append(earlier, c...)
	}
	earlier = append(earlier, cur[:m1]...)
	own = append(own, cur[m1:]...)
	if len(s.full) > m0 {
		for _, c := range s.full[m0+1:] {
			own = append(own, c...)
		}
		own = append(own, s.journal...)
	}
	wasOpen := s.sp.open
	if err := s.writeJournal(earlier); err != nil {
		return err
	}
	if wasOpen {
		s.spEarlier = append(s.spEarlier, earlier...)
	} else if err := s.savepoint(); err != nil {
		return err
	}
	if err := s.writeJournal(own); err != nil {
		return err
	}
	clear(s.full)
	s.full = s.full[:0]
	clear(s.journal)
	s.journal = s.journal[:0]
	s.mark = [2]int{}
	return nil
}

// requeueEarlier queues again the earlier baskets' rows a refused
// basket's ROLLBACK TO dropped (flushBasketJournal).
func (s *state) requeueEarlier() {
	for i := 0; i+journalArity <= len(s.spEarlier); i += journalArity {
		s.queueJournal(s.spEarlier[i : i+journalArity]...)
	}
	s.spEarlier = nil
}

// writeJournal writes the rows of args (journalArity values each), in
// chunks of journalChunks rows.
func (s *state) writeJournal(args []any) error {
	rows := len(args) / journalArity
	for done := 0; done < rows; {
		n := 1
		for _, c := range journalChunks {
			if rows-done >= c {
				n = c
				break
			}
		}
		if _, err := s.exec(insertJournal[n], args[done*journalArity:(done+n)*journalArity]...); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		done += n
	}
	return nil
}

// recorded reports whether redemption id is already in the journal or in
// quarantine (or in this transaction), and marks it recorded. prefetch answers it for a
// whole batch with one query.
func (s *state) recorded(t protocol.TenantID, id protocol.RedemptionID) (bool, error) {
	k := key2{string(t), string(id.Agent)}
	m := s.seen[k]
	if m == nil {
		m = map[uint64]bool{}
		s.seen[k] = m
	}
	exists, known := m[id.Seq]
	if !known {
		var n int64
		if err := s.queryRow(qRecorded, []any{&n}, k.tenant, k.id, int64(id.Seq)); err != nil {
			return false, err
		}
		exists = n > 0
	}
	if s.epoch != 0 {
		prev, had := m[id.Seq]
		s.undoLog = append(s.undoLog, func() {
			if had {
				m[id.Seq] = prev
			} else {
				delete(m, id.Seq)
			}
		})
	}
	m[id.Seq] = true
	return exists, nil
}

// prefetchRange learns which of one agent's seqs lo..hi are recorded
// already, with one range query (the online writer's next hub seqs).
func (s *state) prefetchRange(t protocol.TenantID, a protocol.AgentID, lo, hi uint64) error {
	k := key2{string(t), string(a)}
	m := s.seen[k]
	if m == nil {
		m = map[uint64]bool{}
		s.seen[k] = m
	}
	for seq := lo; seq <= hi; seq++ {
		if _, ok := m[seq]; !ok {
			m[seq] = false
		}
	}
	st, err := s.stmt(qPrefetch)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(s.ctx, k.tenant, k.id, int64(lo), int64(hi))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return err
		}
		m[uint64(seq)] = true
	}
	return rows.Err()
}

// prefetch learns which of one agent's redemptions are recorded already,
// with one range query when their seqs are dense (as an outbox's are).
func (s *state) prefetch(t protocol.TenantID, a protocol.AgentID, rs []protocol.Redemption) error {
	if len(rs) == 0 {
		return nil
	}
	lo, hi := rs[0].ID.Seq, rs[0].ID.Seq
	for _, r := range rs {
		lo, hi = min(lo, r.ID.Seq), max(hi, r.ID.Seq)
	}
	if hi-lo > uint64(4*len(rs)) {
		return nil // sparse: recorded asks row by row
	}
	k := key2{string(t), string(a)}
	m := s.seen[k]
	if m == nil {
		m = map[uint64]bool{}
		s.seen[k] = m
	}
	for _, r := range rs {
		if _, ok := m[r.ID.Seq]; !ok {
			m[r.ID.Seq] = false
		}
	}
	st, err := s.stmt(qPrefetch)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(s.ctx, k.tenant, k.id, int64(lo), int64(hi))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return err
		}
		m[uint64(seq)] = true
	}
	return rows.Err()
}

func (s *state) close() {
	for _, st := range s.stmts {
		st.Close()
	}
	if cap(s.journal) == journalChunks[0]*journalArity {
		clear(s.journal[:cap(s.journal)])
		b := s.journal[:0]
		journalBufs.Put(&b)
		s.journal = nil
	}
}

// journalBufs holds journal buffers (queueJournal) of closed states: the
// online writer's groups and ingest's drains each took a new one, about
// 26 KiB a transaction.
var journalBufs = sync.Pool{New: func() any {
	b := make([]any, 0, journalChunks[0]*journalArity)
	return &b
}}

// stmt returns q prepared on the transaction. A batch runs the same few
// statements thousands of times. The hot ones (hotStatements) were
// prepared on the pool by New, and Tx.StmtContext reuses the copy already
// prepared on this transaction's connection, so they are parsed once per
// connection, not once per transaction; any other is parsed once per
// transaction.
func (s *state) stmt(q string) (*sql.Stmt, error) {
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if ps, ok := s.l.prepared[q]; ok {
		st = s.tx.StmtContext(s.ctx, ps)
	} else {
		var err error
		if st, err = s.tx.PrepareContext(s.ctx, q); err != nil {
			return nil, err
		}
	}
	s.stmts[q] = st
	return st, nil
}

func (s *state) queryRow(q string, dest []any, args ...any) error {
	if s.l.stmts.counting() {
		defer s.l.stmts.note(q, time.Now()) // stmtstats.go
	}
	if s.raw != nil { // the drains' own connection: drainraw.go
		found := false
		ok, err := s.raw.query(s.txCtx, s.ctx, s.l, q, args, func(row rowScanner) error {
			if found {
				return nil // QueryRow's first row
			}
			found = true
			return row.Scan(dest...)
		})
		if ok {
			if err == nil && !found {
				err = sql.ErrNoRows
			}
			return err
		}
	}
	st, err := s.stmt(q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(s.ctx, args...).Scan(dest...)
}

func (s *state) exec(q string, args ...any) (sql.Result, error) {
	if s.l.stmts.counting() {
		defer s.l.stmts.note(q, time.Now())
	}
	if s.raw != nil {
		if res, ok, err := s.raw.exec(s.txCtx, s.ctx, s.l, q, args); ok { // drainraw.go
			return res, err
		}
	}
	st, err := s.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(s.ctx, args...)
}

func loadInt(s *state, m map[key2]*cell[int64], k key2, q string) (*cell[int64], error) {
	if c, ok := m[k]; ok {
		return logCell(s, c), nil
	}
	var v int64
	err := s.queryRow(q, []any{&v}, k.tenant, k.id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	c := &cell[int64]{v: v, orig: v}
	m[k] = c
	return logCell(s, c), nil
}

// loadCounted is loadInt for a balance row with a last redemption.
func loadCounted(s *state, m map[key2]*cell[int64], k key2, q string) (*cell[int64], error) {
	if c, ok := m[k]; ok {
		return logCell(s, c), nil
	}
	var v int64
	var la sql.NullString
	var ls sql.NullInt64
	err := s.queryRow(q, []any{&v, &la, &ls}, k.tenant, k.id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	last := lastID(la, ls)
	c := &cell[int64]{v: v, orig: v, last: last, lastOrig: last}
	m[k] = c
	return logCell(s, c), nil
}

func (s *state) campaign(t protocol.TenantID, c protocol.CampaignID) (*cell[campBal], error) {
	k := key2{string(t), string(c)}
	if x, ok := s.camps[k]; ok {
		return logCell(s, x), nil
	}
	var b campBal
	err := s.queryRow(qCampaign,
		[]any{&b.count, &b.discount, &b.orderValue}, k.tenant, k.id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	x := &cell[campBal]{v: b, orig: b}
	s.camps[k] = x
	return logCell(s, x), nil
}

func (s *state) code(t protocol.TenantID, c protocol.CodeID) (*cell[int64], error) {
	return loadCounted(s, s.codes, key2{string(t), string(c)}, qCode)
}

func (s *state) card(t protocol.TenantID, c protocol.CodeID) (*cell[int64], error) {
	return loadCounted(s, s.cards, key2{string(t), string(c)}, qCard)
}

func (s *state) customer(t protocol.TenantID, c protocol.CustomerID) (*cell[int64], error) {
	return loadInt(s, s.custs, key2{string(t), string(c)}, qCustomer)
}

func (s *state) customerCampaign(t protocol.TenantID, cu protocol.CustomerID, ca protocol.CampaignID) (*cell[int64], error) {
	k := key3{string(t), string(cu), string(ca)}
	if x, ok := s.custCamps[k]; ok {
		return logCell(s, x), nil
	}
	var v int64
	var la sql.NullString
	var ls sql.NullInt64
	err := s.queryRow(qCustCamp, []any{&v, &la, &ls}, k.tenant, k.a, k.b)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	last := lastID(la, ls)
	x := &cell[int64]{v: v, orig: v, last: last, lastOrig: last}
	if d, ok := s.custDelta[k]; ok {
		// Counted blind so far (customerCampaignAdd): the stored value
		// plus what was added, and undo can put the blind cell back.
		x.v += d.v
		if d.last.Agent != "" {
			x.last = d.last
		}
		delete(s.custDelta, k)
		if s.epoch != 0 {
			s.undoLog = append(s.undoLog, func() { delete(s.custCamps, k); s.custDelta[k] = d })
		}
	}
	s.custCamps[k] = x
	return logCell(s, x), nil
}

// customerCampaignAdd is customerCampaign for a count nobody checks (a
// campaign without a per-customer limit): unless the balance is loaded
// already, it is not read at all, and its cell holds what this state adds
// to the stored count (flush adds it in SQL). The online writer saves a
// read per redemption so.
func (s *state) customerCampaignAdd(t protocol.TenantID, cu protocol.CustomerID, ca protocol.CampaignID) *cell[int64] {
	k := key3{string(t), string(cu), string(ca)}
	if x, ok := s.custCamps[k]; ok {
		return logCell(s, x)
	}
	d, ok := s.custDelta[k]
	if !ok {
		if s.custDelta == nil {
			s.custDelta = map[key3]*cell[int64]{}
		}
		d = &cell[int64]{}
		s.custDelta[k] = d
	}
	return logCell(s, d)
}

func (s *state) allowance(t protocol.TenantID, a protocol.AgentID, c protocol.CampaignID) (*cell[allowBal], error) {
	k := key3{string(t), string(a), string(c)}
	if x, ok := s.allows[k]; ok {
		return logCell(s, x), nil
	}
	var b allowBal
	err := s.queryRow(qAllowance,
		[]any{&b.grants, &b.grantedCount, &b.grantedAmount, &b.returnedCount, &b.returnedAmount, &b.usedCount, &b.usedAmount}, k.tenant, k.a, k.b)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	x := &cell[allowBal]{v: b, orig: b}
	s.allows[k] = x
	return logCell(s, x), nil
}

// flush writes the buffered journal rows and every changed balance.
func (s *state) flush() error {
	if err := s.flushJournal(); err != nil {
		return err
	}
	if err := s.flushEvents(); err != nil {
		return err
	}
	exec := func(q string, args ...any) error {
		_, err := s.exec(q, args...)
		return err
	}
	for k, c := range s.camps {
		if c.v == c.orig {
			continue
		}
		if err := exec(upCampaign,
			k.tenant, k.id, c.v.count, c.v.discount, c.v.orderValue); err != nil {
			return fmt.Errorf("campaign balance: %w", err)
		}
	}
	for k, c := range s.codes {
		if c.changed() {
			la, ls := lastArgs(c.last)
			if err := exec(upCode, k.tenant, k.id, c.v, la, ls); err != nil {
				return fmt.Errorf("code balance: %w", err)
			}
		}
	}
	for k, c := range s.cards {
		if c.changed() {
			la, ls := lastArgs(c.last)
			if err := exec(upCard, k.tenant, k.id, c.v, la, ls); err != nil {
				return fmt.Errorf("gift card balance: %w", err)
			}
		}
	}
	var rows []any
	var totals map[string]int64 // the change of each tenant's points total
	for k, c := range s.custs {
		if c.v != c.orig {
			rows = append(rows, k.tenant, k.id, c.v)
			if totals == nil {
				totals = map[string]int64{}
			}
			totals[k.tenant] += c.v - c.orig
		}
	}
	if err := s.execRows(upCustomerN, 3, rows); err != nil {
		return fmt.Errorf("customer balance: %w", err)
	}
	for t, d := range totals {
		if d == 0 {
			continue
		}
		if err := exec(upPointsTotal, t, d); err != nil {
			return fmt.Errorf("points total: %w", err)
		}
	}
	rows = rows[:0]
	for k, c := range s.custCamps {
		if c.changed() {
			la, ls := lastArgs(c.last)
			rows = append(rows, k.tenant, k.a, k.b, c.v, la, ls)
		}
	}
	if err := s.execRows(upCustCampN, 6, rows); err != nil {
		return fmt.Errorf("customer campaign balance: %w", err)
	}
	rows = rows[:0]
	for k, c := range s.custDelta {
		if c.changed() {
			la, ls := lastArgs(c.last)
			rows = append(rows, k.tenant, k.a, k.b, c.v, la, ls)
		}
	}
	if err := s.execRows(addCustCampN, 6, rows); err != nil {
		return fmt.Errorf("customer campaign balance: %w", err)
	}
	rows = rows[:0]
	for k, c := range s.allows {
		if c.v == c.orig {
			continue
		}
		b := c.v
		rows = append(rows, k.tenant, k.a, k.b, b.grants, b.grantedCount, b.grantedAmount, b.returnedCount, b.returnedAmount, b.usedCount, b.usedAmount)
	}
	if err := s.execRows(upAllowanceN, 10, rows); err != nil { // rows.go
		return fmt.Errorf("allowance balance: %w", err)
	}
	return nil
}

// qReserved reads a campaign's outstanding allowances summed over its
// agents (ledger_allowance_totals, kept by triggers: ledger_021_fleet).
const qReserved = `SELECT outstanding_count, outstanding_amount FROM ledger_allowance_totals WHERE tenant = ? AND campaign = ?`

// reserved is the sum of every agent's outstanding allowance of a
// campaign, in count and amount, including changes not yet flushed: the
// stored sum, moved by each of this state's allowance cells from what
// its row holds (orig: a state writes its cells once, at flush) to what
// it holds now. One row read, however many tills hold an allowance.
func (s *state) reserved(t protocol.TenantID, c protocol.CampaignID) (count, amount int64, err error) {
	stored, err := s.storedReserved(t, c)
	if err != nil {
		return 0, 0, err
	}
	count, amount = stored.count, stored.amount
	for k, x := range s.allows {
		if k.tenant == string(t) && k.b == string(c) && x.v != x.orig {
			count += max(0, x.v.outstandingCount()) - max(0, x.orig.outstandingCount())
			amount += max(0, x.v.outstandingAmount()) - max(0, x.orig.outstandingAmount())
		}
	}
	return count, amount, nil
}

type reservedSum struct{ count, amount int64 }

// storedReserved reads a campaign's stored sum once per state: while the
// state holds the write lock only its own flush moves it, and reserved
// applies the state's changes on top.
func (s *state) storedReserved(t protocol.TenantID, c protocol.CampaignID) (reservedSum, error) {
	k := key2{string(t), string(c)}
	if a, ok := s.resv[k]; ok {
		return a, nil
	}
	var r reservedSum
	if err := s.queryRow(qReserved, []any{&r.count, &r.amount}, k.tenant, k.id); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, err
	}
	if s.resv == nil {
		s.resv = map[key2]reservedSum{}
	}
	s.resv[k] = r
	return r, nil
}

// upsertChunks are the row counts of the multi-row balance upserts, largest
// first: a batch's customers are mostly distinct, and one statement per
// balance row cost as much as their journal rows.
var upsertChunks = [...]int{32, 8, 1}

// addCustCampN adds to customer-campaign balances (customerCampaignAdd),
// by row count; a NULL last redemption keeps the stored one.
// The rows are ledger_customer_rows' of kind 1 (n1 count, s1 last_agent,
// n2 last_seq), their arguments in ledger_customer_campaigns' order.
var addCustCampN = upsertRowsN(`INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, s1, n2) VALUES `, `(?, ?, 1, ?, ?, ?, ?)`,
	` ON CONFLICT (tenant, customer, kind, k1, k2) DO UPDATE SET n1 = n1 + excluded.n1,
		s1 = COALESCE(excluded.s1, s1), n2 = COALESCE(excluded.n2, n2)`)

// upCustCampN is the upsert of customer-campaign balances, by row count.
var upCustCampN = upsertRowsN(`INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, s1, n2) VALUES `, `(?, ?, 1, ?, ?, ?, ?)`,
	` ON CONFLICT (tenant, customer, kind, k1, k2) DO UPDATE SET n1 = excluded.n1, s1 = excluded.s1, n2 = excluded.n2`)

// upsertN returns, for every n in upsertChunks, head + n rows of width
// placeholders + tail.
func upsertN(head string, width int, tail string) map[int]string {
	return upsertRowsN(head, "("+strings.TrimSuffix(strings.Repeat("?, ", width), ", ")+")", tail)
}

// upsertRowsN returns, for every n in upsertChunks, head + n copies of row
// + tail: row may hold constants besides its placeholders.
func upsertRowsN(head, row, tail string) map[int]string {
	m := map[int]string{}
	for _, n := range upsertChunks {
		m[n] = head + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + tail
	}
	return m
}

// execRows writes args, rows of width values each, with the statements
// of qs (one per upsertChunks size).
func (s *state) execRows(qs map[int]string, width int, args []any) error {
	for rows := len(args) / width; rows > 0; {
		n := 1
		for _, c := range upsertChunks {
			if rows >= c {
				n = c
				break
			}
		}
		if _, err := s.exec(qs[n], args[:n*width]...); err != nil {
			return err
		}
		args, rows = args[n*width:], rows-n
	}
	return nil
}

// balanceChunk is how many keys one prefetch query asks for; a shorter
// list is padded by repeating its last key, so that one prepared statement
// serves every list.
const balanceChunk = 32

var (
	qCodesIn = `SELECT code, uses, last_agent, last_seq FROM ledger_codes WHERE tenant = ? AND code IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", balanceChunk), ", ") + `)`
	qCustCampsIn = `SELECT customer, count, last_agent, last_seq FROM ledger_customer_campaigns WHERE tenant = ? AND campaign = ? AND customer IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", balanceChunk), ", ") + `)`
)

// prefetchBalances loads, with one query per balanceChunk keys, the code
// and customer-campaign balances rs will touch that this transaction has
// not loaded yet: a batch's customers are mostly distinct, and one point
// query each cost more than their journal rows. A key the query does not
// return has no row yet: its cell starts at zero, as code and
// customerCampaign would start it.
func (s *state) prefetchBalances(rs []protocol.Redemption) error {
	type group struct{ tenant, campaign string }
	codes := map[string][]string{}
	custs := map[group][]string{}
	seenCode, seenCust := map[key2]bool{}, map[key3]bool{}
	for _, r := range rs {
		if r.Code != "" {
			k := key2{string(r.Tenant), string(r.Code)}
			if _, ok := s.codes[k]; !ok && !seenCode[k] {
				seenCode[k] = true
				codes[k.tenant] = append(codes[k.tenant], k.id)
			}
		}
		if r.Customer != "" && r.Campaign != "" {
			k := key3{string(r.Tenant), string(r.Customer), string(r.Campaign)}
			if _, ok := s.custCamps[k]; !ok && !seenCust[k] {
				seenCust[k] = true
				g := group{k.tenant, k.b}
				custs[g] = append(custs[g], k.a)
			}
		}
	}
	for t, ids := range codes {
		err := s.loadIn(qCodesIn, []any{t}, ids, func(id string, v int64, last protocol.RedemptionID) {
			s.codes[key2{t, id}] = &cell[int64]{v: v, orig: v, last: last, lastOrig: last}
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, ok := s.codes[key2{t, id}]; !ok {
				s.codes[key2{t, id}] = &cell[int64]{}
			}
		}
	}
	for g, ids := range custs {
		err := s.loadIn(qCustCampsIn, []any{g.tenant, g.campaign}, ids, func(id string, v int64, last protocol.RedemptionID) {
			s.custCamps[key3{g.tenant, id, g.campaign}] = &cell[int64]{v: v, orig: v, last: last, lastOrig: last}
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, ok := s.custCamps[key3{g.tenant, id, g.campaign}]; !ok {
				s.custCamps[key3{g.tenant, id, g.campaign}] = &cell[int64]{}
			}
		}
	}
	return nil
}

// loadIn runs q (prefix arguments, then balanceChunk keys) over ids, chunk
// by chunk (queryIn), and hands each row's key, value and last redemption
// to found.
func (s *state) loadIn(q string, prefix []any, ids []string, found func(id string, v int64, last protocol.RedemptionID)) error {
	return s.queryRows(q, prefix, ids, func(rows rowScanner) error {
		var id string
		var v int64
		var la sql.NullString
		var ls sql.NullInt64
		if err := rows.Scan(&id, &v, &la, &ls); err != nil {
			return err
		}
		found(id, v, lastID(la, ls))
		return nil
	})
}
