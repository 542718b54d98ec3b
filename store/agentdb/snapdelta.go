package agentdb

import (
	"context"
	"fmt"
)

// AppendSnapshotDelta stores a delta the agent applied on top of the
// stored snapshot (d.Body as received), takes d's version and ETag as the
// snapshot's, and marks the agent synced, in one small transaction: the
// megabytes of the stored snapshot are not rewritten, so the POS's
// commits wait for a few rows at most. It returns how many deltas are
// stored now (the agent compacts them into a full snapshot when many).
func (d *DB) AppendSnapshotDelta(ctx context.Context, s Snapshot) (int, error) {
	if s.At.IsZero() {
		s.At = d.now()
	}
	tx, end, err := d.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("agentdb: append snapshot delta: %w", err)
	}
	defer end()
	res, err := tx.ExecContext(ctx, `UPDATE snapshot SET version = ?, etag = ?, at_ms = ? WHERE id = 1`, s.Version, s.ETag, s.At.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("agentdb: append snapshot delta: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, fmt.Errorf("agentdb: append snapshot delta: no stored snapshot")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO snapshot_deltas (body) VALUES (?)`, s.Body); err != nil {
		return 0, fmt.Errorf("agentdb: append snapshot delta: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agent_state SET synced_at_ms = ?, reflected_wm = MAX(reflected_wm, ?) WHERE id = 1`, s.At.UnixMilli(), int64(s.Reflected)); err != nil {
		return 0, fmt.Errorf("agentdb: append snapshot delta: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM snapshot_deltas`).Scan(&n); err != nil {
		return 0, fmt.Errorf("agentdb: append snapshot delta: %w", err)
	}
	return n, tx.Commit()
}

// SnapshotDeltas returns the stored deltas' bodies in the order they were
// applied.
func (d *DB) SnapshotDeltas(ctx context.Context) ([][]byte, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT body FROM snapshot_deltas ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("agentdb: snapshot deltas: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("agentdb: snapshot deltas: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
