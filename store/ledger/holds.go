package ledger

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// holdsKeptExpired is how long an expired hold stays in ledger_holds
// before ReplaceHolds sweeps it (no read counts it meanwhile).
const holdsKeptExpired = 2 * time.Minute

// ReplaceHolds drops owner's holds and records hs (all owner's), in one
// transaction, and sweeps the holds expired well before now. A hold
// survives a hub restart, and every hub on this database sees it.
func (l *Ledger) ReplaceHolds(ctx context.Context, tenant protocol.TenantID, owner string, hs []pledger.Hold, now time.Time) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("holds", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM ledger_holds WHERE tenant = ? AND owner = ?`, string(tenant), owner); err != nil {
		return wrap("holds", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ledger_holds WHERE expires < ?`, now.Add(-holdsKeptExpired).UnixMicro()); err != nil {
		return wrap("holds", err)
	}
	for _, h := range hs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_holds (tenant, kind, a, b, owner, uses, spend, base_uses, base_spent, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, kind, a, b, owner) DO UPDATE SET
			uses = uses + excluded.uses, spend = spend + excluded.spend, expires = max(expires, excluded.expires)`,
			string(tenant), string(rune(h.Kind)), h.A, h.B, owner, h.Uses, h.Spend, h.BaseUses, h.BaseSpent, h.Expires.UnixMicro()); err != nil {
			return wrap("holds", err)
		}
	}
	return wrap("holds", tx.Commit())
}

// Holds returns the holds on k not expired at now.
func (l *Ledger) Holds(ctx context.Context, tenant protocol.TenantID, k pledger.HoldKey, now time.Time) ([]pledger.Hold, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT owner, uses, spend, base_uses, base_spent, expires FROM ledger_holds
		WHERE tenant = ? AND kind = ? AND a = ? AND b = ? AND expires >= ?`, string(tenant), string(rune(k.Kind)), k.A, k.B, now.UnixMicro())
	if err != nil {
		return nil, wrap("holds", err)
	}
	defer rows.Close()
	var out []pledger.Hold
	for rows.Next() {
		h := pledger.Hold{HoldKey: k}
		var exp int64
		if err := rows.Scan(&h.Owner, &h.Uses, &h.Spend, &h.BaseUses, &h.BaseSpent, &exp); err != nil {
			return nil, wrap("holds", err)
		}
		h.Expires = time.UnixMicro(exp)
		out = append(out, h)
	}
	return out, wrap("holds", rows.Err())
}

// DropHolds removes holds that lapsed (their fact reached the ledger), as
// Holds read them: a hold its owner replaced meanwhile (another expiry)
// stays.
func (l *Ledger) DropHolds(ctx context.Context, tenant protocol.TenantID, hs []pledger.Hold) error {
	for _, h := range hs {
		if _, err := l.db.ExecContext(ctx, `DELETE FROM ledger_holds WHERE tenant = ? AND kind = ? AND a = ? AND b = ? AND owner = ? AND expires = ?`,
			string(tenant), string(rune(h.Kind)), h.A, h.B, h.Owner, h.Expires.UnixMicro()); err != nil {
			return wrap("holds", err)
		}
	}
	return nil
}
