package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
)

// Grant adds a hub grant (the answer to an allowance request) to the
// campaign's allowance. Grants are numbered; one whose number is not above
// the stored one was applied already (an answer or a snapshot carried it)
// and is ignored (false). When the answer says what the hub granted in
// all (GrantedCount, GrantedAmount) and the till knows what it received
// in all, the difference is added: a grant whose answer was lost is added
// with the next one. Otherwise the grant's own Count and Amount are.
// Adding rather than overwriting keeps the local uses made while the
// grant was in flight counted.
func (d *DB) Grant(ctx context.Context, a protocol.Allowance) (bool, error) {
	return d.grant(ctx, a, false)
}

// Adopt reconciles the campaign's allowance with the hub's view of this
// till's grants (a snapshot's Allowances: Grant is the last grant number,
// GrantedCount and GrantedAmount everything granted, Count and Amount
// what the hub counts as outstanding). A grant number above the stored
// one means answers were lost: the till adds what the hub granted beyond
// what it received, or, holding no allowance of the campaign at all,
// takes the outstanding figures (it cannot have used any of it). With no
// cumulative figures on either side it only records the number (nothing
// is added that might have been received). It reports whether it changed
// anything.
func (d *DB) Adopt(ctx context.Context, a protocol.Allowance) (bool, error) {
	return d.grant(ctx, a, true)
}

func (d *DB) grant(ctx context.Context, a protocol.Allowance, adopt bool) (bool, error) {
	if a.Grant == 0 {
		return false, nil
	}
	tx, end, err := d.beginWrite(ctx)
	if err != nil {
		return false, fmt.Errorf("agentdb: grant: %w", err)
	}
	defer end()
	var no uint64
	var left, leftAmt int64
	var got, gotAmt sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT grant_no, count_left, amount_left, granted_count, granted_amount FROM allowances WHERE campaign = ?`,
		string(a.Campaign)).Scan(&no, &left, &leftAmt, &got, &gotAmt)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("agentdb: grant: %w", err)
	}
	if exists && a.Grant <= no {
		return false, nil
	}
	cumulative := a.GrantedCount != 0 || a.GrantedAmount != 0
	var addC, addA int64 // -1: unlimited
	switch {
	case !exists:
		addC, addA = a.Count, a.Amount // a grant's size, or (adopt) what is outstanding
	case cumulative && got.Valid && gotAmt.Valid:
		addC, addA = missed(a.GrantedCount, got.Int64), missed(a.GrantedAmount, gotAmt.Int64)
	case adopt:
		addC, addA = 0, 0
	default:
		addC, addA = a.Count, a.Amount
	}
	if !exists {
		left, leftAmt = 0, 0
	}
	var gc, ga any // NULL unless the hub said
	if cumulative {
		gc, ga = a.GrantedCount, a.GrantedAmount
	}
	lastC, lastA := a.Count, a.Amount
	if adopt && exists {
		lastC, lastA = 0, 0 // keep the low-water base of the last answered grant
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO allowances (campaign, grant_no, count_left, amount_left, currency, expires_us, last_count, last_amount, granted_count, granted_amount)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
		ON CONFLICT (campaign) DO UPDATE SET grant_no = ?2, count_left = ?3, amount_left = ?4, currency = ?5, expires_us = ?6,
			last_count = CASE WHEN ?7 = 0 AND ?8 = 0 THEN last_count ELSE ?7 END,
			last_amount = CASE WHEN ?7 = 0 AND ?8 = 0 THEN last_amount ELSE ?8 END,
			granted_count = ?9, granted_amount = ?10`,
		string(a.Campaign), a.Grant, add(left, addC), add(leftAmt, addA), string(a.Currency), a.Expires, lastC, lastA, gc, ga); err != nil {
		return false, fmt.Errorf("agentdb: grant: %w", err)
	}
	return true, tx.Commit()
}

// missed is what the hub granted beyond what the till received; -1 when
// the dimension is unlimited.
func missed(hub, received int64) int64 {
	if hub < 0 || received < 0 {
		return -1
	}
	return max(hub-received, 0)
}

// add adds a grant to what is left; -1 on either side is unlimited.
func add(left, v int64) int64 {
	if left < 0 || v < 0 {
		return -1
	}
	return left + v
}
