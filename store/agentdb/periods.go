package agentdb

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// recordEarnPeriod keeps an earn of a period-capped rule (Redemption.Cap)
// in own_earn_periods, in the fact's transaction.
func recordEarnPeriod(ctx context.Context, tx *sql.Tx, rd protocol.Redemption) error {
	n := rd.Points // an earn's points
	if rd.Kind == protocol.KindRedeem {
		n = 1 // a redemption counted per customer and period
	} else if rd.Kind != protocol.KindEarn {
		return nil
	}
	if rd.Cap == nil || rd.Customer == "" || n <= 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO own_earn_periods (customer, campaign, rule, start, seq, points) VALUES (?, ?, ?, ?, ?, ?)`,
		string(rd.Customer), string(rd.Campaign), rd.Cap.Rule, rd.Cap.Start, int64(rd.ID.Seq), n); err != nil {
		return fmt.Errorf("agentdb: record earn period: %w", err)
	}
	return nil
}

// PeriodEarned is what the customer earned at this till in the period k
// (own facts), leaving out those r says the hub's figure counts; a nil r
// counts every own fact (offline: no hub figure).
func (d *DB) PeriodEarned(ctx context.Context, customer protocol.CustomerID, k protocol.PeriodKey, r *Reflected) (int64, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq, points FROM own_earn_periods WHERE customer = ? AND campaign = ? AND rule = ? AND start = ?`,
		string(customer), string(k.Campaign), k.Rule, k.Start)
	if err != nil {
		return 0, fmt.Errorf("agentdb: period earned: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var seq, pts int64
		if err := rows.Scan(&seq, &pts); err != nil {
			return 0, fmt.Errorf("agentdb: period earned: %w", err)
		}
		if r == nil || !r.counts(uint64(seq)) {
			n += pts
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("agentdb: period earned: %w", err)
	}
	return n, nil
}
