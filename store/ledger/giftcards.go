package ledger

import (
	"context"
	"database/sql"
	"errors"

	"github.com/punchcard/punchcard/protocol"
)

// Gift card life (issue 12): a sale (protocol.KindIssue) or top-up
// (protocol.KindTopUp) is journaled with its load in the spend column and
// sign 0, so it counts as no use of the code or the campaign. A top-up
// adds its load to the card's loaded figure (ledger_013_giftcards); a
// card's first sale does not: its value is the balance the hub gives the
// new code in the catalog. A second sale of the same code (a pre-printed
// card sold at two offline tills) is recorded, its load added to loaded,
// and flagged ConflictGiftCardReissued: the customer paid, the card holds
// it.

// ConflictGiftCardReissued: a gift card code sold a second time.
const ConflictGiftCardReissued ConflictKind = "giftcard_reissued"

// journalSpend is what a fact writes to the journal's spend column.
func journalSpend(r protocol.Redemption) int64 {
	if r.Kind.Loads() {
		return r.Load
	}
	return r.Spend
}

const upLoaded = `INSERT INTO ledger_giftcards (tenant, code, loaded) VALUES (?, ?, ?)
	ON CONFLICT (tenant, code) DO UPDATE SET loaded = loaded + excluded.loaded`

// qCardIssued finds a card's earlier sale. The entry is a literal, not
// an argument: only then can SQLite use the partial index of sales
// (ledger_023_card_issue); with a bound entry the sale searched the
// tenant's whole journal.
const qCardIssued = `SELECT agent, seq FROM ledger_journal WHERE tenant = ? AND code = ? AND entry = 'giftcard_issue'
	AND NOT (agent = ? AND seq = ?) ORDER BY id LIMIT 1`

// applyLoad records a sale's or top-up's effect on the card's balance.
// The journal row is queued already.
func applyLoad(s *state, r protocol.Redemption, conflict func(ConflictKind, *protocol.RedemptionID, string, ...any)) error {
	add := r.Load
	if r.Kind == protocol.KindIssue {
		if err := s.flushJournal(); err != nil {
			return err
		}
		var first sql.NullInt64
		var fa sql.NullString
		err := s.tx.QueryRowContext(s.ctx, qCardIssued,
			string(r.Tenant), string(r.Code), string(r.ID.Agent), int64(r.ID.Seq)).Scan(&fa, &first)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			add = 0 // the first sale: the catalog balance holds it
		case err != nil:
			return err
		default:
			o := protocol.RedemptionID{Agent: protocol.AgentID(fa.String), Seq: uint64(first.Int64)}
			conflict(ConflictGiftCardReissued, &o, "gift card sold again for %d; added to its balance", r.Load)
		}
	}
	if add == 0 {
		return nil
	}
	_, err := s.tx.ExecContext(s.ctx, upLoaded, string(r.Tenant), string(r.Code), add)
	return err
}

// applyCashOut takes a cash-out's Spend from the card (sign 0: no use
// of the code or campaign); one beyond the balance is flagged
// giftcard_overdrawn as a spend would be.
func applyCashOut(s *state, r protocol.Redemption, kf CodeFacts, known bool, conflict func(ConflictKind, *protocol.RedemptionID, string, ...any)) error {
	g, err := s.card(r.Tenant, r.Code)
	if err != nil {
		return err
	}
	g.v += r.Spend
	if known && kf.GiftCard && g.v > kf.InitialBalance {
		loaded, err := cardLoaded(s, r.Tenant, r.Code)
		if err != nil {
			return err
		}
		if g.v > kf.InitialBalance+loaded {
			conflict(ConflictGiftCardOverdraw, other(g.last), "gift card of %d cashed out to %d", kf.InitialBalance+loaded, g.v)
		}
	}
	g.last = r.ID
	return nil
}

// insertConflicts records a gift card fact's conflicts, as applyOne does
// for the others.
func insertConflicts(s *state, cs []Conflict) ([]Conflict, bool, error) {
	for i := range cs {
		var err error
		if cs[i].ID, err = insertConflict(s, cs[i]); err != nil {
			return nil, false, err
		}
	}
	return cs, true, nil
}

// cardLoaded is what top-ups loaded onto a card, in s's transaction.
func cardLoaded(s *state, t protocol.TenantID, c protocol.CodeID) (int64, error) {
	var v int64
	err := s.tx.QueryRowContext(s.ctx, `SELECT loaded FROM ledger_giftcards WHERE tenant = ? AND code = ?`, string(t), string(c)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// GiftCardLoaded is what top-ups (and repeated sales) loaded onto a gift
// card: its balance is its catalog balance plus this, less what was spent
// (GiftCardSpent nets it out already).
func (l *Ledger) GiftCardLoaded(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error) {
	return l.scalar(ctx, `SELECT loaded FROM ledger_giftcards WHERE tenant = ? AND code = ?`, string(tenant), string(code))
}

// GiftCardLiability is what the tenant's cards sold or topped up through
// facts (tills and the hub's sale route) still owe in currency: every
// load, less what was spent from those cards, net of rollbacks. Cards
// created at head office without a sale fact are not counted: their
// value is a catalog figure. A card's liability is in the currency of
// its first sale.
func (l *Ledger) GiftCardLiability(ctx context.Context, tenant protocol.TenantID, currency protocol.Currency) (int64, error) {
	return l.scalar(ctx, qLiability, string(tenant), string(currency))
}

// What the sold cards owe, read per card, not per journal row: the
// journal's sum (every load of a sold card, less its cash-outs and its
// spends net of rollbacks; Verify's "liability") grows with every use of
// a card, the cards' balances do not. soldCards is each card's first
// sale (ledger_journal_card_issue, whose entry is a literal for the
// partial index) with its balance row; cardOwes is the sale's load, plus
// what top-ups and repeated sales loaded since (loaded), less what was
// cashed out and spent (spent). Verify checks it against the journal's
// sum, tenant by tenant.
const (
	soldCards = `ledger_journal f INDEXED BY ledger_journal_card_issue
		LEFT JOIN ledger_giftcards g ON g.tenant = f.tenant AND g.code = f.code
		WHERE f.entry = 'giftcard_issue' AND NOT EXISTS (SELECT 1 FROM ledger_journal e INDEXED BY ledger_journal_card_issue
			WHERE e.tenant = f.tenant AND e.code = f.code AND e.entry = 'giftcard_issue' AND e.id < f.id)`
	cardOwes = `f.spend + COALESCE(g.loaded, 0) - COALESCE(g.spent, 0)`

	qLiability   = `SELECT COALESCE(SUM(` + cardOwes + `), 0) FROM ` + soldCards + ` AND f.tenant = ? AND f.currency = ?`
	qLiabilities = `SELECT f.currency, SUM(` + cardOwes + `) FROM ` + soldCards + ` AND f.tenant = ? GROUP BY f.currency`
)

// HubFacts returns the hub's own facts recorded under a transaction id
// (the online sale route finds the card an earlier try of the same
// transaction sold, so that a retry sells no second card).
func (l *Ledger) HubFacts(ctx context.Context, tenant protocol.TenantID, txn string) ([]protocol.Redemption, error) {
	rows, err := l.db.QueryContext(ctx, qByTxn, string(tenant), string(protocol.HubSender), txn)
	if err != nil {
		return nil, wrap("hub facts", err)
	}
	defer rows.Close()
	var out []protocol.Redemption
	for rows.Next() {
		r, _, err := scanRedemption(rows)
		if err != nil {
			return nil, wrap("hub facts", err)
		}
		out = append(out, r)
	}
	return out, wrap("hub facts", rows.Err())
}
