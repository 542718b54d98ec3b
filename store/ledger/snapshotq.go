package ledger

import (
	"context"
	"database/sql"

	"github.com/punchcard/punchcard/protocol"
)

// CodeState is what the ledger knows of one code, for the agents'
// snapshots: tills that see a code's uses and a gift card's spending made
// elsewhere refuse a reuse or an overdraw at once instead of flagging it as a
// conflict after the next sync.
type CodeState struct {
	Used  int64 // redemptions of the code, net of rollbacks
	Spent int64 // gift cards: the amount spent, net of rollbacks
}

// CodeStates returns the state of every code of tenant the ledger has a
// balance row for (a code used once and rolled back stays listed with zero,
// so a till that saw the use learns of the rollback). It reads
// ledger_codes and ledger_giftcards with one query each, in one read
// transaction, so the two agree.
func (l *Ledger) CodeStates(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]CodeState, error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, wrap("code states", err)
	}
	defer tx.Rollback()
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
