package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// OwnCard is a gift card this till sold (its sale fact): what the till
// knows of it until a snapshot lists it.
type OwnCard struct {
	Campaign protocol.CampaignID
	Currency protocol.Currency
	Balance  int64 // the sale's amount
	Seq      uint64
}

// recordLoad keeps a sale's or top-up's row (own_cards) in the commit's
// transaction. A second sale of a code this till sold is refused with
// giftcard_already_sold.
func recordLoad(ctx context.Context, tx *sql.Tx, rd protocol.Redemption) error {
	if !rd.Kind.Loads() {
		return nil
	}
	issue := rd.Kind == protocol.KindIssue
	if issue {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM own_cards WHERE code = ? AND issue = 1`, string(rd.Code)).Scan(&n); err != nil {
			return fmt.Errorf("agentdb: own cards: %w", err)
		}
		if n > 0 {
			return protocol.NewError(protocol.CodeGiftCardSold)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO own_cards (seq, code, campaign, currency, amount, issue) VALUES (?, ?, ?, ?, ?, ?)`,
		rd.ID.Seq, string(rd.Code), string(rd.Campaign), string(rd.Currency), rd.Load, issue)
	if err != nil {
		return fmt.Errorf("agentdb: own cards: %w", err)
	}
	return nil
}

// OwnCard returns the card this till sold under code, if it did.
func (d *DB) OwnCard(ctx context.Context, code protocol.CodeID) (OwnCard, bool, error) {
	var c OwnCard
	var campaign, currency string
	err := d.db.QueryRowContext(ctx, `SELECT campaign, currency, amount, seq FROM own_cards WHERE code = ? AND issue = 1`, string(code)).
		Scan(&campaign, &currency, &c.Balance, &c.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return OwnCard{}, false, nil
	}
	if err != nil {
		return OwnCard{}, false, fmt.Errorf("agentdb: own card: %w", err)
	}
	c.Campaign, c.Currency = protocol.CampaignID(campaign), protocol.Currency(currency)
	return c, true, nil
}

// OwnTopUps is what this till's top-ups of code loaded that the hub's
// figure does not count (outside r; nil: every one).
func (d *DB) OwnTopUps(ctx context.Context, code protocol.CodeID, r *Reflected) (int64, error) {
	var after uint64
	if r != nil {
		after = r.Watermark
	}
	rows, err := d.db.QueryContext(ctx, `SELECT seq, amount FROM own_cards WHERE code = ? AND issue = 0 AND seq > ?`, string(code), int64(after))
	if err != nil {
		return 0, fmt.Errorf("agentdb: own top-ups: %w", err)
	}
	defer rows.Close()
	var sum int64
	for rows.Next() {
		var seq, amount int64
		if err := rows.Scan(&seq, &amount); err != nil {
			return 0, fmt.Errorf("agentdb: own top-ups: %w", err)
		}
		if r == nil || !r.counts(uint64(seq)) {
			sum += amount
		}
	}
	return sum, rows.Err()
}
