package ledger

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/punchcard/punchcard/protocol"
)

// CodeState is what the ledger knows of one code (protocol.CodeState).
type CodeState = protocol.CodeState

// CodeStates returns the state of every code of tenant the ledger has a
// balance row for (a code used once and rolled back stays listed with zero,
// so a till that saw the use learns of the rollback). It reads
// ledger_codes and ledger_giftcards with one query each, in one read
// transaction, so the two agree.
func (l *Ledger) CodeStates(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]CodeState, error) {
	out, _, err := l.CodeStatesAt(ctx, tenant)
	return out, err
}

// CodeStatesAt is CodeStates with the tenant's code-use position the
// states were read at (CodeHead, same transaction): a till that holds
// them asks for CodeChanges after it.
func (l *Ledger) CodeStatesAt(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]CodeState, uint64, error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, wrap("code states", err)
	}
	defer tx.Rollback()
	head, err := codeHead(ctx, tx, tenant)
	if err != nil {
		return nil, 0, wrap("code states", err)
	}
	out, err := allCodeStates(ctx, tx, tenant)
	return out, head, err
}

func allCodeStates(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (map[protocol.CodeID]CodeState, error) {
	out := map[protocol.CodeID]CodeState{}
	if err := codeStates(ctx, tx, `SELECT code, uses FROM ledger_codes WHERE tenant = ?`, string(tenant), func(c protocol.CodeID, v int64) {
		s := out[c]
		s.Used = v
		out[c] = s
	}); err != nil {
		return nil, wrap("code states", err)
	}
	if err := codeStates(ctx, tx, `SELECT code, spent FROM ledger_giftcards WHERE tenant = ?`, string(tenant), func(c protocol.CodeID, v int64) {
		s := out[c]
		s.Spent = v
		out[c] = s
	}); err != nil {
		return nil, wrap("code states", err)
	}
	if err := codeStates(ctx, tx, `SELECT code, loaded FROM ledger_giftcards WHERE tenant = ? AND loaded != 0`, string(tenant), func(c protocol.CodeID, v int64) {
		s := out[c]
		s.Loaded = v
		out[c] = s
	}); err != nil {
		return nil, wrap("code states", err)
	}
	return out, nil
}

func codeStates(ctx context.Context, tx *sql.Tx, q, tenant string, set func(protocol.CodeID, int64)) error {
	rows, err := tx.QueryContext(ctx, q, tenant)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		var v int64
		if err := rows.Scan(&code, &v); err != nil {
			return err
		}
		set(protocol.CodeID(code), v)
	}
	return rows.Err()
}

// JournalMark is the ID of the newest journal entry, 0 for an empty
// ledger. Every balance change appends to the journal, so anything derived
// from the ledger (a cached snapshot ETag) is current while the mark is
// unchanged. It is one lookup of the table's largest rowid.
func (l *Ledger) JournalMark(ctx context.Context) (int64, error) {
	var m sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT MAX(id) FROM ledger_journal`).Scan(&m); err != nil {
		return 0, wrap("journal mark", err)
	}
	return m.Int64, nil
}

// DefaultMaxCodeChanges is how many code-use changes a delta carries at
// most; a till further behind gets a full snapshot.
const DefaultMaxCodeChanges = 20_000

// CodeChanges returns the state of every code of tenant whose uses or
// gift card spending changed after the code-use position after, with the
// current position (head), in one read transaction. It reads the
// (tenant, useq) index from after on, so its cost is the number of
// changes since, whatever the number of codes ever used. ok is false
// when more than limit codes changed, or after is beyond head (a
// position of another database): the caller then sends the full states
// (CodeStatesAt).
func (l *Ledger) CodeChanges(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) (states map[protocol.CodeID]CodeState, head uint64, ok bool, err error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, false, wrap("code changes", err)
	}
	defer tx.Rollback()
	if head, err = codeHead(ctx, tx, tenant); err != nil {
		return nil, 0, false, wrap("code changes", err)
	}
	if after > head {
		return nil, head, false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.code, c.uses, COALESCE(g.spent, 0), COALESCE(g.loaded, 0) FROM ledger_codes c
			LEFT JOIN ledger_giftcards g ON g.tenant = c.tenant AND g.code = c.code WHERE c.tenant = ?1 AND c.useq > ?2
		UNION
		SELECT g.code, COALESCE(c.uses, 0), g.spent, g.loaded FROM ledger_giftcards g
			LEFT JOIN ledger_codes c ON c.tenant = g.tenant AND c.code = g.code WHERE g.tenant = ?1 AND g.useq > ?2
		LIMIT ?3`, string(tenant), int64(after), limit+1)
	if err != nil {
		return nil, 0, false, wrap("code changes", err)
	}
	defer rows.Close()
	states = map[protocol.CodeID]CodeState{}
	for rows.Next() {
		var code string
		var st CodeState
		if err := rows.Scan(&code, &st.Used, &st.Spent, &st.Loaded); err != nil {
			return nil, 0, false, wrap("code changes", err)
		}
		states[protocol.CodeID(code)] = st
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, wrap("code changes", err)
	}
	if len(states) > limit {
		return nil, head, false, nil
	}
	return states, head, true, nil
}

// CodeHead is the tenant's code-use position: the number of changes of
// its codes' uses and gift cards' spending so far (0: none).
func (l *Ledger) CodeHead(ctx context.Context, tenant protocol.TenantID) (uint64, error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, wrap("code head", err)
	}
	defer tx.Rollback()
	h, err := codeHead(ctx, tx, tenant)
	return h, wrap("code head", err)
}

func codeHead(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (uint64, error) {
	var h int64
	err := tx.QueryRowContext(ctx, `SELECT seq FROM ledger_code_seq WHERE tenant = ?`, string(tenant)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(h), err
}

// Positions returns the tenant's code-use position (CodeHead) and its
// customer-state position (CustomerHead) and, when the code-use position
// is beyond after, each code whose uses or gift card spending changed
// after it, with the position of its last change (at most limit; ok is
// false when more changed, or after is beyond the position: a position of
// another database): what a snapshot poll reads of the ledger to find
// that nothing a till acts on moved (hub/snapshots, quiet.go). It is one
// statement, so one read snapshot without a transaction of its own:
// database/sql starts a goroutine per transaction, and the first read
// after another connection's commit reloads the connection's pages, which
// a busy hub does between any two polls.
func (l *Ledger) Positions(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) (codes, customers uint64, changed map[protocol.CodeID]uint64, ok bool, err error) {
	rows, err := l.db.QueryContext(ctx, `SELECT 0, '', COALESCE((SELECT seq FROM ledger_code_seq WHERE tenant = ?1), 0),
			COALESCE((SELECT seq FROM ledger_customer_seq WHERE tenant = ?1), 0)
		UNION ALL SELECT 1, code, useq, 0 FROM (SELECT code, useq FROM ledger_codes WHERE tenant = ?1 AND useq > ?2
			UNION ALL SELECT code, useq FROM ledger_giftcards WHERE tenant = ?1 AND useq > ?2 LIMIT ?3)`, string(tenant), int64(after), 2*limit+2) // a code may have a row in each
	if err != nil {
		return 0, 0, nil, false, wrap("positions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind int
		var code string
		var a, b int64
		if err := rows.Scan(&kind, &code, &a, &b); err != nil {
			return 0, 0, nil, false, wrap("positions", err)
		}
		if kind == 0 {
			codes, customers = uint64(a), uint64(b)
			continue
		}
		if changed == nil {
			changed = map[protocol.CodeID]uint64{}
		}
		changed[protocol.CodeID(code)] = max(changed[protocol.CodeID(code)], uint64(a))
	}
	if err := rows.Err(); err != nil {
		return 0, 0, nil, false, wrap("positions", err)
	}
	if len(changed) > limit || after > codes {
		return codes, customers, nil, false, nil
	}
	return codes, customers, changed, true, nil
}

// SnapshotRead reads what a snapshot body for agent needs of the ledger
// in one statement, so at one position and without a transaction of its
// own: the tenant's code-use and customer-state positions, which of the
// agent's facts the code states count (Reflected's watermark and the
// seqs applied beyond it, at most MaxAckBeyond), and, with changes, the
// state of each code whose uses or gift card spending changed after the
// code-use position after (CodeChanges, at most limit), and, with escrow,
// the agent's allowances (Escrow). It replaces Reflected, CustomerHead,
// CodeChanges and Escrow, three read transactions and a query, on the
// path of every snapshot body.
func (l *Ledger) SnapshotRead(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, after uint64, changes, escrow bool, limit int) (protocol.SnapshotRead, error) {
	var r protocol.SnapshotRead
	codeLimit := 0 // LIMIT 0: no states
	if changes {
		codeLimit = limit + 1
	}
	escrowLimit := 0
	if escrow {
		escrowLimit = -1 // every campaign
	}
	rows, err := l.db.QueryContext(ctx, `SELECT 0, '', COALESCE((SELECT seq FROM ledger_code_seq WHERE tenant = ?1), 0),
			COALESCE((SELECT seq FROM ledger_customer_seq WHERE tenant = ?1), 0),
			COALESCE((SELECT watermark FROM ledger_agents WHERE tenant = ?1 AND agent = ?2), 0), 0, 0
		UNION ALL SELECT 3, campaign, grants, granted_count, granted_amount, outstanding_count, outstanding_amount FROM (
			SELECT campaign, grants, granted_count, granted_amount, granted_count - returned_count - used_count AS outstanding_count,
				granted_amount - returned_amount - used_amount AS outstanding_amount
			FROM ledger_allowances WHERE tenant = ?1 AND agent = ?2 ORDER BY campaign LIMIT ?6)
		UNION ALL SELECT 1, '', seq, 0, 0, 0, 0 FROM (SELECT DISTINCT seq FROM ledger_journal WHERE tenant = ?1 AND agent = ?2
			AND seq > COALESCE((SELECT watermark FROM ledger_agents WHERE tenant = ?1 AND agent = ?2), 0) ORDER BY seq LIMIT ?3)
		UNION ALL SELECT 2, code, uses, spent, loaded, 0, 0 FROM (
			SELECT c.code, c.uses, COALESCE(g.spent, 0) AS spent, COALESCE(g.loaded, 0) AS loaded FROM ledger_codes c
				LEFT JOIN ledger_giftcards g ON g.tenant = c.tenant AND g.code = c.code WHERE c.tenant = ?1 AND c.useq > ?4
			UNION ALL
			SELECT g.code, COALESCE(c.uses, 0), g.spent, g.loaded FROM ledger_giftcards g
				LEFT JOIN ledger_codes c ON c.tenant = g.tenant AND c.code = g.code WHERE g.tenant = ?1 AND g.useq > ?4 AND COALESCE(c.useq, 0) <= ?4
			LIMIT ?5)`, string(tenant), string(agent), MaxAckBeyond, int64(after), codeLimit, escrowLimit)
	if err != nil {
		return r, wrap("snapshot read", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var kind int
		var code string
		var a, b, c, d, e int64
		if err := rows.Scan(&kind, &code, &a, &b, &c, &d, &e); err != nil {
			return r, wrap("snapshot read", err)
		}
		switch kind {
		case 0:
			r.Codes, r.Customers, r.Watermark = uint64(a), uint64(b), uint64(c)
		case 1:
			r.Beyond = append(r.Beyond, uint64(a))
		case 3:
			r.Escrow = append(r.Escrow, protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: protocol.CampaignID(code), Grant: uint64(a),
				GrantedCount: b, GrantedAmount: c, Count: d, Amount: e})
		default:
			if r.States == nil {
				r.States = map[protocol.CodeID]CodeState{}
			}
			r.States[protocol.CodeID(code)] = CodeState{Used: a, Spent: b, Loaded: c}
			n++
		}
	}
	if err := rows.Err(); err != nil {
		return r, wrap("snapshot read", err)
	}
	slices.Sort(r.Beyond)
	r.StatesOK = changes && n <= limit && after <= r.Codes
	if !r.StatesOK {
		r.States = nil
	} else if r.States == nil {
		r.States = map[protocol.CodeID]CodeState{}
	}
	return r, nil
}
