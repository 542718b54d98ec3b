package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
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
// orig tells flush whether it changed.
type cell[T comparable] struct{ v, orig T }

// state holds the balances one transaction touches, loaded lazily and
// written back once at the end, so that a batch of N redemptions costs N
// journal inserts plus one upsert per distinct balance row.
type state struct {
	ctx       context.Context
	tx        *sql.Tx
	camps     map[key2]*cell[campBal]
	codes     map[key2]*cell[int64]
	cards     map[key2]*cell[int64]
	custs     map[key2]*cell[int64]
	custCamps map[key3]*cell[int64]
	allows    map[key3]*cell[allowBal]
	stmts     map[string]*sql.Stmt     // bound to this transaction
	journal   []any                    // buffered journal rows, journalArity values each
	seen      map[key2]map[uint64]bool // redemption seqs met in this transaction
}

func (l *Ledger) newState(ctx context.Context, tx *sql.Tx) *state {
	return &state{
		ctx: ctx, tx: tx,
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

// queueJournal buffers one journal row.
func (s *state) queueJournal(args ...any) { s.journal = append(s.journal, args...) }

// flushJournal writes the buffered journal rows, journalChunk per
// statement.
func (s *state) flushJournal() error {
	rows := len(s.journal) / journalArity
	for done := 0; done < rows; {
		n := journalChunk // one statement for full chunks, one for single rows
		if rows-done < journalChunk {
			n = 1
		}
		if _, err := s.exec(insertJournalN(n), s.journal[done*journalArity:(done+n)*journalArity]...); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		done += n
	}
	s.journal = s.journal[:0]
	return nil
}

// recorded reports whether redemption id is already in the journal (or
// in this transaction), and marks it recorded. prefetch answers it for a
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
		if err := s.queryRow(`SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq = ?`, []any{&n}, k.tenant, k.id, int64(id.Seq)); err != nil {
			return false, err
		}
		exists = n > 0
	}
	m[id.Seq] = true
	return exists, nil
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
	st, err := s.stmt(`SELECT seq FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq BETWEEN ? AND ?`)
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
}

// stmt returns q prepared on the transaction. A batch runs the same few
// statements thousands of times; they are parsed once per transaction.
// (Statements prepared on the pool and bound with Tx.Stmt would need a
// second connection while this one holds the write lock.)
func (s *state) stmt(q string) (*sql.Stmt, error) {
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	st, err := s.tx.PrepareContext(s.ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmts[q] = st
	return st, nil
}

func (s *state) queryRow(q string, dest []any, args ...any) error {
	st, err := s.stmt(q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(s.ctx, args...).Scan(dest...)
}

func (s *state) exec(q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(s.ctx, args...)
}

func loadInt(s *state, m map[key2]*cell[int64], k key2, q string) (*cell[int64], error) {
	if c, ok := m[k]; ok {
		return c, nil
	}
	var v int64
	err := s.queryRow(q, []any{&v}, k.tenant, k.id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	c := &cell[int64]{v: v, orig: v}
	m[k] = c
	return c, nil
}

func (s *state) campaign(t protocol.TenantID, c protocol.CampaignID) (*cell[campBal], error) {
	k := key2{string(t), string(c)}
	if x, ok := s.camps[k]; ok {
		return x, nil
	}
	var b campBal
	err := s.queryRow(`SELECT count, discount, order_value FROM ledger_campaigns WHERE tenant = ? AND campaign = ?`,
		[]any{&b.count, &b.discount, &b.orderValue}, k.tenant, k.id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	x := &cell[campBal]{v: b, orig: b}
	s.camps[k] = x
	return x, nil
}

func (s *state) code(t protocol.TenantID, c protocol.CodeID) (*cell[int64], error) {
	return loadInt(s, s.codes, key2{string(t), string(c)}, `SELECT uses FROM ledger_codes WHERE tenant = ? AND code = ?`)
}

func (s *state) card(t protocol.TenantID, c protocol.CodeID) (*cell[int64], error) {
	return loadInt(s, s.cards, key2{string(t), string(c)}, `SELECT spent FROM ledger_giftcards WHERE tenant = ? AND code = ?`)
}

func (s *state) customer(t protocol.TenantID, c protocol.CustomerID) (*cell[int64], error) {
	return loadInt(s, s.custs, key2{string(t), string(c)}, `SELECT points FROM ledger_customers WHERE tenant = ? AND customer = ?`)
}

func (s *state) customerCampaign(t protocol.TenantID, cu protocol.CustomerID, ca protocol.CampaignID) (*cell[int64], error) {
	k := key3{string(t), string(cu), string(ca)}
	if x, ok := s.custCamps[k]; ok {
		return x, nil
	}
	var v int64
	err := s.queryRow(`SELECT count FROM ledger_customer_campaigns WHERE tenant = ? AND customer = ? AND campaign = ?`, []any{&v}, k.tenant, k.a, k.b)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	x := &cell[int64]{v: v, orig: v}
	s.custCamps[k] = x
	return x, nil
}

func (s *state) allowance(t protocol.TenantID, a protocol.AgentID, c protocol.CampaignID) (*cell[allowBal], error) {
	k := key3{string(t), string(a), string(c)}
	if x, ok := s.allows[k]; ok {
		return x, nil
	}
	var b allowBal
	err := s.queryRow(`SELECT grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount
		FROM ledger_allowances WHERE tenant = ? AND agent = ? AND campaign = ?`,
		[]any{&b.grants, &b.grantedCount, &b.grantedAmount, &b.returnedCount, &b.returnedAmount, &b.usedCount, &b.usedAmount}, k.tenant, k.a, k.b)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	x := &cell[allowBal]{v: b, orig: b}
	s.allows[k] = x
	return x, nil
}

// flush writes the buffered journal rows and every changed balance.
func (s *state) flush() error {
	if err := s.flushJournal(); err != nil {
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
		if err := exec(`INSERT INTO ledger_campaigns (tenant, campaign, count, discount, order_value) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant, campaign) DO UPDATE SET count = excluded.count, discount = excluded.discount, order_value = excluded.order_value`,
			k.tenant, k.id, c.v.count, c.v.discount, c.v.orderValue); err != nil {
			return fmt.Errorf("campaign balance: %w", err)
		}
	}
	for k, c := range s.codes {
		if c.v != c.orig {
			if err := exec(`INSERT INTO ledger_codes (tenant, code, uses) VALUES (?, ?, ?) ON CONFLICT (tenant, code) DO UPDATE SET uses = excluded.uses`, k.tenant, k.id, c.v); err != nil {
				return fmt.Errorf("code balance: %w", err)
			}
		}
	}
	for k, c := range s.cards {
		if c.v != c.orig {
			if err := exec(`INSERT INTO ledger_giftcards (tenant, code, spent) VALUES (?, ?, ?) ON CONFLICT (tenant, code) DO UPDATE SET spent = excluded.spent`, k.tenant, k.id, c.v); err != nil {
				return fmt.Errorf("gift card balance: %w", err)
			}
		}
	}
	for k, c := range s.custs {
		if c.v != c.orig {
			if err := exec(`INSERT INTO ledger_customers (tenant, customer, points) VALUES (?, ?, ?) ON CONFLICT (tenant, customer) DO UPDATE SET points = excluded.points`, k.tenant, k.id, c.v); err != nil {
				return fmt.Errorf("customer balance: %w", err)
			}
		}
	}
	for k, c := range s.custCamps {
		if c.v != c.orig {
			if err := exec(`INSERT INTO ledger_customer_campaigns (tenant, customer, campaign, count) VALUES (?, ?, ?, ?)
				ON CONFLICT (tenant, customer, campaign) DO UPDATE SET count = excluded.count`, k.tenant, k.a, k.b, c.v); err != nil {
				return fmt.Errorf("customer campaign balance: %w", err)
			}
		}
	}
	for k, c := range s.allows {
		if c.v == c.orig {
			continue
		}
		b := c.v
		if err := exec(`INSERT INTO ledger_allowances (tenant, agent, campaign, grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, agent, campaign) DO UPDATE SET grants = excluded.grants,
				granted_count = excluded.granted_count, granted_amount = excluded.granted_amount,
				returned_count = excluded.returned_count, returned_amount = excluded.returned_amount,
				used_count = excluded.used_count, used_amount = excluded.used_amount`,
			k.tenant, k.a, k.b, b.grants, b.grantedCount, b.grantedAmount, b.returnedCount, b.returnedAmount, b.usedCount, b.usedAmount); err != nil {
			return fmt.Errorf("allowance balance: %w", err)
		}
	}
	return nil
}

// reserved is the sum of every agent's outstanding allowance of a
// campaign, in count and amount, including changes not yet flushed.
func (s *state) reserved(t protocol.TenantID, c protocol.CampaignID) (count, amount int64, err error) {
	rows, err := s.tx.QueryContext(s.ctx, `SELECT agent, grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount
		FROM ledger_allowances WHERE tenant = ? AND campaign = ?`, string(t), string(c))
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var agent string
		var b allowBal
		if err := rows.Scan(&agent, &b.grants, &b.grantedCount, &b.grantedAmount, &b.returnedCount, &b.returnedAmount, &b.usedCount, &b.usedAmount); err != nil {
			return 0, 0, err
		}
		if x, ok := s.allows[key3{string(t), agent, string(c)}]; ok {
			b = x.v
		}
		seen[agent] = true
		count += max(0, b.outstandingCount())
		amount += max(0, b.outstandingAmount())
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for k, x := range s.allows {
		if k.tenant == string(t) && k.b == string(c) && !seen[k.a] {
			count += max(0, x.v.outstandingCount())
			amount += max(0, x.v.outstandingAmount())
		}
	}
	return count, amount, nil
}
