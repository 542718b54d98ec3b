package ledger

import (
	"context"
	"database/sql"
	"errors"

	"github.com/punchcard/punchcard/protocol"
)

// Reflected reads, in one read transaction, the tenant's code-use position
// (CodeHead) and which of agent's facts the code states at that position
// count: every seq up to the agent's contiguous watermark and the seqs
// applied beyond it (at most MaxAckBeyond; a fact beyond those is counted
// by the till a second time, never missed). A till adds its own facts
// outside that set to the states' figures (snapshot.Reflected).
//
// States read at a position at or after head count at least those facts
// (a fact that changes a code moves the position in the same
// transaction), so a snapshot built at head or later may carry them.
func (l *Ledger) Reflected(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (head, watermark uint64, beyond []uint64, err error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, nil, wrap("reflected", err)
	}
	defer tx.Rollback()
	if head, err = codeHead(ctx, tx, tenant); err != nil {
		return 0, 0, nil, wrap("reflected", err)
	}
	var wm int64
	err = tx.QueryRowContext(ctx, qWatermark, string(tenant), string(agent)).Scan(&wm)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil, wrap("reflected", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT seq FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq > ? ORDER BY seq LIMIT ?`,
		string(tenant), string(agent), wm, MaxAckBeyond)
	if err != nil {
		return 0, 0, nil, wrap("reflected", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return 0, 0, nil, wrap("reflected", err)
		}
		beyond = append(beyond, uint64(s))
	}
	return head, uint64(wm), beyond, wrap("reflected", rows.Err())
}
