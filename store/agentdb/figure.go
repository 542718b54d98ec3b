package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/punchcard/punchcard/protocol"
)

// What the till knows of a code's uses and a gift card's spending is exact:
// the hub's last figure (a snapshot's Code.Used and Code.Spent) plus the
// till's own facts that figure does not count yet. The snapshot says which
// of this agent's facts its figures count (Reflected: the hub's contiguous
// watermark for this agent and the seqs it applied beyond it, read with the
// figures); every own fact is kept per seq in own_uses until a stored
// snapshot's watermark passes it. Neither side's figure is ever taken as a
// lower bound of the other's (no max): another till's spending that raised
// the hub's figure and this till's unsynced spending both count.

// Reflected says which of this agent's own facts a hub figure counts: every
// seq up to Watermark and each seq in Beyond (applied above a gap).
type Reflected struct {
	Watermark uint64
	Beyond    []uint64 // ascending
}

// counts reports whether the figure counts the fact numbered seq.
func (r *Reflected) counts(seq uint64) bool {
	if seq <= r.Watermark {
		return true
	}
	_, ok := slices.BinarySearch(r.Beyond, seq)
	return ok
}

// HubFigure is the hub's last figure for one code, with what it counts of
// this till's own facts. A nil Reflected means unknown (a token serial,
// which snapshots carry no figure for, or a hub before Reflected): then
// every own fact the till ever recorded is added, which never counts less
// than the truth.
type HubFigure struct {
	Used      int64
	Spent     int64
	Reflected *Reflected
}

// Figure is what the till knows of a code: uses and gift card spending,
// every till's and channel's, net of rollbacks.
type Figure struct {
	Uses  int64
	Spent int64
}

// ErrStaleFigure is returned by Commit when a fact was decided with hub
// figures older than own facts since pruned (Prune drops the rows a newer
// snapshot counts): the decision cannot be checked exactly and is made
// again with the snapshot in use. It needs a prune between a snapshot
// apply and the commit of a sale decided before it.
var ErrStaleFigure = errors.New("agentdb: decided with hub figures older than the pruned own facts")

type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// CodeFigure is what the till knows of code: hub's figure plus this till's
// own facts it does not count. It is the one place that arithmetic lives;
// Commit checks a fact's CodeUse with it inside the transaction.
func (d *DB) CodeFigure(ctx context.Context, code protocol.CodeID, hub HubFigure) (Figure, error) {
	return codeFigure(ctx, d.db, string(code), hub)
}

func codeFigure(ctx context.Context, q queryer, code string, hub HubFigure) (Figure, error) {
	f := Figure{Uses: hub.Used, Spent: hub.Spent}
	if hub.Reflected == nil {
		var uses, spent int64
		err := q.QueryRowContext(ctx, `SELECT uses, spent FROM code_uses WHERE code = ?`, code).Scan(&uses, &spent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Figure{}, fmt.Errorf("agentdb: code figure: %w", err)
		}
		f.Uses, f.Spent = f.Uses+uses, f.Spent+spent
		return clampFigure(f), nil
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, uses, spent FROM own_uses WHERE code = ? AND seq > ?`, code, int64(hub.Reflected.Watermark))
	if err != nil {
		return Figure{}, fmt.Errorf("agentdb: code figure: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq, uses, spent int64
		if err := rows.Scan(&seq, &uses, &spent); err != nil {
			return Figure{}, fmt.Errorf("agentdb: code figure: %w", err)
		}
		if !hub.Reflected.counts(uint64(seq)) {
			f.Uses, f.Spent = f.Uses+uses, f.Spent+spent
		}
	}
	if err := rows.Err(); err != nil {
		return Figure{}, fmt.Errorf("agentdb: code figure: %w", err)
	}
	return clampFigure(f), nil
}

func clampFigure(f Figure) Figure { return Figure{Uses: max(f.Uses, 0), Spent: max(f.Spent, 0)} }

// checkFresh refuses (ErrStaleFigure) figures whose watermark is below
// what was pruned from own_uses.
func checkFresh(ctx context.Context, tx *sql.Tx, r *Reflected) error {
	if r == nil {
		return nil
	}
	var pruned int64
	if err := tx.QueryRowContext(ctx, `SELECT own_pruned_to FROM agent_state WHERE id = 1`).Scan(&pruned); err != nil {
		return fmt.Errorf("agentdb: code figure: %w", err)
	}
	if r.Watermark < uint64(pruned) {
		return ErrStaleFigure
	}
	return nil
}

// pruneOwnUses drops the own facts the stored snapshot's figures count
// (seq at or below its watermark).
func (d *DB) pruneOwnUses(ctx context.Context) (int64, error) {
	tx, end, err := d.beginRelaxed(ctx)
	if err != nil {
		return 0, err
	}
	defer end()
	var wm, pruned int64
	if err := tx.QueryRowContext(ctx, `SELECT reflected_wm, own_pruned_to FROM agent_state WHERE id = 1`).Scan(&wm, &pruned); err != nil {
		return 0, err
	}
	if wm <= pruned {
		return 0, nil
	}
	// Raised first: a commit that waits for this transaction then sees it
	// and refuses figures older than the rows gone.
	if _, err := tx.ExecContext(ctx, `UPDATE agent_state SET own_pruned_to = ? WHERE id = 1`, wm); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM own_uses WHERE seq <= ?`, wm)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}
