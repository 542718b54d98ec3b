package ledger

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store"
)

// Manual points adjustments (ledger_012_adjustments.sql).

// Adjustment types are protocol/ledger's.
type (
	Adjustment       = pledger.Adjustment
	AdjustmentRecord = pledger.AdjustmentRecord
	AdjustOnce       = pledger.AdjustOnce
)

const (
	insAdjustJournal = `INSERT INTO ledger_journal (tenant, entry, agent, seq, customer, points, psign, hlc, received_at)
		VALUES (?, '` + pledger.EntryPointsAdjusted + `', ?, ?, ?, ?, 1, ?, ?)`
	insAdjustment = `INSERT INTO ledger_adjustments (tenant, agent, seq, customer, points, reason, note, reference, expires_at, actor, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// AdjustPoints records a manual points adjustment, once per once.Key, in
// one transaction: the journal entry (points_adjusted, the hub's next
// seq), its audit row, the customer's balance and lots, the hub's
// watermark and the idempotency record. A positive adjustment is a new lot
// (paying off a debt lot first, as every earn does); a negative one first
// expires what is due, then takes from the live lots, soonest expiry
// first, as a burn does, and is refused beyond the live balance. Verify
// stays clean: the entry is a points entry like any other.
//
// The caller has checked the adjustment (customer known, reason, limits).
// Reason codes: insufficient_points, idempotency_key_reused.
func (l *Ledger) AdjustPoints(ctx context.Context, a Adjustment, once AdjustOnce) (pledger.Outcome, AdjustmentRecord, error) {
	var rec AdjustmentRecord
	if err := protocol.ValidateID("tenant", string(a.Tenant)); err != nil {
		return pledger.Outcome{}, rec, err
	}
	if a.Points == 0 {
		return pledger.Outcome{}, rec, protocol.FieldError("points", "an adjustment changes the points: not 0")
	}
	var tx *sql.Tx
	var err error
	for deadline := time.Now().Add(writerBusyRetry); ; {
		tx, err = l.db.BeginTx(ctx, nil)
		if !IsBusy(err) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if IsBusy(err) {
			return pledger.Outcome{}, rec, ErrQueueFull
		}
		return pledger.Outcome{}, rec, wrap("adjust points: begin", err)
	}
	defer tx.Rollback()
	if once.Key != "" {
		st, body, found, err := store.RecallIdem(ctx, tx, a.Tenant, once.Key, once.Request)
		if err != nil {
			return pledger.Outcome{}, rec, err
		}
		if found {
			return pledger.Outcome{Replayed: true, Status: st, Body: body}, rec, nil
		}
	}
	now := l.now()
	nowUS := micros(now)
	s := l.newState(ctx, tx)
	defer s.close()
	var wm int64
	if err := s.queryRow(qWatermark, []any{&wm}, string(a.Tenant), string(protocol.HubSender)); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return pledger.Outcome{}, rec, wrap("adjust points: seq", err)
	}
	// The watermark is contiguous; a seq above it (a damaged watermark)
	// is skipped like the writer's prefetch would.
	seq := wm + 1
	for {
		taken, err := s.recorded(a.Tenant, protocol.RedemptionID{Agent: protocol.HubSender, Seq: uint64(seq)})
		if err != nil {
			return pledger.Outcome{}, rec, wrap("adjust points: seq", err)
		}
		if !taken {
			break
		}
		seq++
	}
	id := protocol.RedemptionID{Agent: protocol.HubSender, Seq: uint64(seq)}
	var expires int64
	if !a.ExpiresAt.IsZero() {
		expires = micros(a.ExpiresAt)
	}
	if err := s.expireDue(a.Tenant, a.Customer, nowUS, max(-a.Points, 0)); err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points: lots", err)
	}
	c, err := s.customer(a.Tenant, a.Customer)
	if err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points", err)
	}
	if a.Points > 0 {
		if rec.Lot, err = s.addLot(a.Tenant, a.Customer, "", a.Points, nowUS, expires, id, nowUS); err != nil {
			return pledger.Outcome{}, rec, wrap("adjust points: lots", err)
		}
	} else {
		if c.v+a.Points < 0 {
			return pledger.Outcome{}, rec, protocol.Errorf(protocol.CodeInsufficientPts, "the customer has %d points; the adjustment takes %d", max(c.v, 0), -a.Points)
		}
		if err := s.takePoints(a.Tenant, a.Customer, id, -a.Points, 0, nowUS); err != nil {
			return pledger.Outcome{}, rec, wrap("adjust points: lots", err)
		}
	}
	c.v += a.Points
	if _, err := s.exec(insAdjustJournal, string(a.Tenant), string(id.Agent), seq, string(a.Customer), a.Points, int64(HLCFromTime(now)), nowUS); err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points: journal", err)
	}
	if _, err := s.exec(insAdjustment, string(a.Tenant), string(id.Agent), seq, string(a.Customer), a.Points, a.Reason, a.Note, a.Reference,
		expires, a.By, nowUS); err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points: record", err)
	}
	if err := s.flush(); err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points", err)
	}
	if _, err := advanceWatermark(s, a.Tenant, protocol.HubSender, now); err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points: watermark", err)
	}
	rec.Adjustment, rec.Redemption, rec.At, rec.Balance = a, id, now.UTC(), c.v
	out := pledger.Outcome{}
	if once.Key != "" && once.Answer != nil {
		st, body, err := once.Answer(rec)
		if err != nil {
			return pledger.Outcome{}, rec, err
		}
		if _, err := store.RememberIdem(ctx, tx, a.Tenant, once.Key, once.Request, st, body, now); err != nil {
			return pledger.Outcome{}, rec, wrap("adjust points", err)
		}
		out.Status, out.Body = st, body
	}
	if err := tx.Commit(); err != nil {
		return pledger.Outcome{}, rec, wrap("adjust points: commit", err)
	}
	l.eventsCommitted() // events.go
	return out, rec, nil
}
