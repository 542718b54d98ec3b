package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Points as lots (ledger_006_points_lots.sql). Every earn is a lot with
// the expiry the rules engine gave it (protocol.Redemption.Expires); a
// burn takes the live lots that expire first (never-expiring ones last,
// then the oldest) and records what it took (ledger_points_takes), so that
// its rollback gives exactly those points back; the expiry zeroes what is
// due and journals it (points_expired). The lots change in the same
// transaction as the journal rows and the customer's balance, under the
// ledger's write lock, so the expiry and a burn never race: whichever
// commits first, the other sees it. Invariant, checked by Verify:
// ledger_customers.points = Σ remaining of the customer's lots (the debt
// lot counted negative).
//
// Decisions (docs/rules.md, "Points lots"):
//   - A burn first expires the customer's due lots (in its transaction,
//     journaled), so it never spends a point past its expiry, even when the
//     scheduled expiry has not run yet.
//   - A rollback of a burn gives back exactly the lots it took. A lot that
//     expired meanwhile expires again at once, journaled in the same
//     transaction: the customer is never given spendable expired points.
//   - A rollback of an earn takes back what is left of the earn's lot and,
//     for the points already spent, as much from the other lots (soonest
//     expiry first), or else the debt lot. It takes back nothing of what
//     already expired from the lot (the expiry took those): its journal
//     entry records what it really took back.
//   - A till's burn beyond the live lots (offline, points_overdrawn) goes to
//     the customer's debt lot; the next earns pay it off first.

const (
	// qLotsStream is a customer's live lots ("(remaining > 0) = 1") in
	// the order a burn reaches them, the order of the key of
	// ledger_points_lots_customer_live (ledger_027_lots_order.sql): lots
	// that expire, soonest first (those already due among them), then
	// lots that never expire, by id. One range read serves the due lots'
	// expiry and the burn's takes, and stops at what the burn needs.
	qLotsStream = `SELECT id, campaign, remaining, expires_at FROM ledger_points_lots
		WHERE tenant = ? AND customer = ? AND (remaining > 0) = 1 ORDER BY expires_at = 0, expires_at, id`
	qLotDebt  = `SELECT id, remaining FROM ledger_points_lots WHERE tenant = ? AND customer = ? AND debt = 1`
	qLotBySrc = `SELECT id, remaining, expired FROM ledger_points_lots WHERE tenant = ? AND customer = ? AND src_seq = ? AND src_agent = ? AND debt = 0`
	qLot      = `SELECT remaining, expires_at, voided, campaign FROM ledger_points_lots WHERE id = ?`
	insLot    = `INSERT INTO ledger_points_lots (tenant, customer, campaign, amount, remaining, earned_at, expires_at, src_agent, src_seq, debt)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	upLotAdd    = `UPDATE ledger_points_lots SET remaining = remaining + ? WHERE id = ?`
	upLotExpire = `UPDATE ledger_points_lots SET expired = expired + remaining, remaining = 0 WHERE id = ?`
	upLotVoid   = `UPDATE ledger_points_lots SET voided = 1 WHERE id = ?`
	insTake     = `INSERT INTO ledger_points_takes (tenant, agent, seq, lot, points) VALUES (?, ?, ?, ?, ?)`
	qTakes      = `SELECT lot, points FROM ledger_points_takes WHERE tenant = ? AND agent = ? AND seq = ? ORDER BY rowid`
	insExpired  = `INSERT INTO ledger_journal (tenant, entry, agent, seq, customer, campaign, points, psign, hlc, lot, received_at)
		VALUES (?, '` + pledger.EntryPointsExpired + `', ?, NULL, ?, ?, ?, 1, ?, ?, ?)`
	// qPointsLive is Points: the balance less what is due and not yet
	// expired by the job.
	qPointsLive = `SELECT points - COALESCE((SELECT SUM(remaining) FROM ledger_points_lots
		WHERE tenant = ?1 AND customer = ?2 AND (remaining > 0) = 1 AND (expires_at = 0) = 0 AND expires_at <= ?3), 0)
		FROM ledger_customers WHERE tenant = ?1 AND customer = ?2`
)

// lotStatements are the lots' statements of the apply and online paths,
// prepared once per connection (hotStatements) and plan-checked with them.
var lotStatements = []string{qLotsStream, qLotDebt, qLotBySrc, qLot, insLot, upLotAdd, upLotExpire,
	upLotVoid, insTake, qTakes, insExpired, qPointsLive}

// applyLots records r's effect on its customer's lots, before applyOne
// journals it; psign is its points sign (signs). For a rollback of an earn
// it sets r.Points to what the rollback takes back (see the decisions
// above). Every write opens the online writer's basket savepoint first.
func (l *Ledger) applyLots(s *state, r *protocol.Redemption, psign int64, now time.Time) error {
	if r.Customer == "" || r.Points == 0 || psign == 0 {
		return nil
	}
	if err := s.savepoint(); err != nil {
		return err
	}
	nowUS := micros(now)
	delta := psign * r.Points
	switch {
	case r.Kind != protocol.KindRollback && delta > 0: // an earn
		earned := now
		if r.ID.Agent != protocol.HubSender && r.HLC != 0 {
			earned = l.hlcTime(r.HLC)
		}
		_, err := s.addLot(r.Tenant, r.Customer, r.Campaign, delta, micros(earned), r.Expires, r.ID, nowUS)
		return err
	case r.Kind != protocol.KindRollback: // a burn (or a redeem paid in points)
		if err := s.expireDue(r.Tenant, r.Customer, nowUS, -delta); err != nil {
			return err
		}
		return s.takePoints(r.Tenant, r.Customer, r.ID, -delta, 0, nowUS)
	case delta > 0: // a rollback of a burn: give back what it took
		return s.giveBack(r.Tenant, r.Customer, r.Campaign, *r.Ref, r.ID, delta, nowUS)
	default: // a rollback of an earn
		if err := s.expireDue(r.Tenant, r.Customer, nowUS, 0); err != nil {
			return err
		}
		var id, remaining, expired int64
		// r.Customer is the earn's, read from the journal by signs: the lot
		// is found among the customer's (ledger_022_lots_src).
		err := s.queryRow(qLotBySrc, []any{&id, &remaining, &expired}, string(r.Tenant), string(r.Customer), int64(r.Ref.Seq), string(r.Ref.Agent))
		switch {
		case errors.Is(err, sql.ErrNoRows): // earned before lots: take it all back
			id = 0
		case err != nil:
			return err
		default:
			s.lotsChanged()
			if _, err := s.exec(upLotVoid, id); err != nil {
				return err
			}
			back := max(-delta-expired, 0)
			r.Points = back * -psign // psign is -1: the entry records +back, applied as -back
			if back == 0 {
				return nil
			}
			delta = -back
		}
		return s.takePoints(r.Tenant, r.Customer, r.ID, -delta, id, nowUS)
	}
}

// addLot records a new lot of n points (n > 0), paying off the customer's
// debt lot first. A lot already due (a late fact) expires at once.
func (s *state) addLot(t protocol.TenantID, cu protocol.CustomerID, camp protocol.CampaignID, n, earned, expires int64, src protocol.RedemptionID, now int64) (int64, error) {
	s.lotsChanged()
	var debtID, debt int64
	if !s.noDebt[key2{string(t), string(cu)}] { // known without a debt lot (rows.go)
		err := s.queryRow(qLotDebt, []any{&debtID, &debt}, string(t), string(cu))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
	}
	remaining := n
	if debt < 0 {
		pay := min(n, -debt)
		if _, err := s.exec(upLotAdd, pay, debtID); err != nil {
			return 0, err
		}
		remaining -= pay
	}
	var srcAgent, srcSeq any = "", nil
	if src.Agent != "" {
		srcAgent, srcSeq = string(src.Agent), int64(src.Seq)
	}
	res, err := s.exec(insLot, string(t), string(cu), string(camp), n, remaining, earned, expires, srcAgent, srcSeq, 0)
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if expires != 0 && expires <= now && remaining > 0 {
		return id, s.expireLot(t, cu, camp, id, remaining, expires, now)
	}
	return id, nil
}

// takePoints takes n points of the customer's live lots, first from lot
// prefer (when not 0: a rollback of an earn, its own lot), then soonest
// expiry first, never-expiring lots last, then the debt lot; it records
// the takes under by.
func (s *state) takePoints(t protocol.TenantID, cu protocol.CustomerID, by protocol.RedemptionID, n, prefer, now int64) error {
	type take struct{ lot, points int64 }
	var takes []take
	left := n
	if prefer != 0 {
		var rem, exp, voided int64
		var camp string
		if err := s.queryRow(qLot, []any{&rem, &exp, &voided, &camp}, prefer); err != nil {
			return err
		}
		if rem > 0 {
			p := min(rem, left)
			takes = append(takes, take{prefer, p})
			left -= p
		}
	}
	if left > 0 {
		lots, ok := s.takeLotsRead(t, cu, now, left, prefer)
		if !ok {
			var err error
			if lots, _, _, err = s.readLots(t, cu, now, left, prefer); err != nil {
				return err
			}
		}
		for _, lt := range lots {
			if left == 0 {
				break
			}
			if lt.id == prefer {
				continue
			}
			p := min(lt.rem, left)
			takes = append(takes, take{lt.id, p})
			left -= p
		}
	}
	if left > 0 { // beyond the live lots: the debt lot
		var debtID, debt int64
		err := s.queryRow(qLotDebt, []any{&debtID, &debt}, string(t), string(cu))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			delete(s.noDebt, key2{string(t), string(cu)})
			res, err := s.exec(insLot, string(t), string(cu), "", 0, 0, now, 0, "", nil, 1)
			if err != nil {
				return err
			}
			if debtID, err = res.LastInsertId(); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		takes = append(takes, take{debtID, left})
	}
	s.lotsChanged()
	for _, tk := range takes {
		if _, err := s.exec(upLotAdd, -tk.points, tk.lot); err != nil {
			return err
		}
		if _, err := s.exec(insTake, string(t), string(by.Agent), int64(by.Seq), tk.lot, tk.points); err != nil {
			return err
		}
	}
	return nil
}

// giveBack returns to their lots the n points the debit of ref took (its
// rollback, by). A lot that is due expires again at once; a lot whose
// earn was rolled back gives to the debt lot instead. What ref took
// before lots existed (no takes recorded) comes back as a new lot that
// never expires.
func (s *state) giveBack(t protocol.TenantID, cu protocol.CustomerID, camp protocol.CampaignID, ref, by protocol.RedemptionID, n, now int64) error {
	s.lotsChanged()
	st, err := s.stmt(qTakes)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(s.ctx, string(t), string(ref.Agent), int64(ref.Seq))
	if err != nil {
		return err
	}
	type take struct{ lot, points int64 }
	var takes []take
	for rows.Next() {
		var tk take
		if err := rows.Scan(&tk.lot, &tk.points); err != nil {
			rows.Close()
			return err
		}
		takes = append(takes, tk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	left := n
	for _, tk := range takes {
		p := min(tk.points, left)
		if p <= 0 {
			break
		}
		left -= p
		var rem, exp, voided int64
		var lotCamp string
		if err := s.queryRow(qLot, []any{&rem, &exp, &voided, &lotCamp}, tk.lot); err != nil {
			return err
		}
		lot := tk.lot
		if voided != 0 {
			var debt int64
			err := s.queryRow(qLotDebt, []any{&lot, &debt}, string(t), string(cu))
			if errors.Is(err, sql.ErrNoRows) {
				delete(s.noDebt, key2{string(t), string(cu)})
				res, err := s.exec(insLot, string(t), string(cu), "", 0, 0, now, 0, "", nil, 1)
				if err != nil {
					return err
				}
				if lot, err = res.LastInsertId(); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			exp = 0
		}
		if _, err := s.exec(upLotAdd, p, lot); err != nil {
			return err
		}
		if exp != 0 && exp <= now {
			if err := s.expireLot(t, cu, protocol.CampaignID(lotCamp), lot, rem+p, exp, now); err != nil {
				return err
			}
		}
	}
	if left > 0 {
		_, err := s.addLot(t, cu, camp, left, now, 0, protocol.RedemptionID{}, now)
		return err
	}
	return nil
}

// expireDue expires the customer's lots that are due at now, journaled.
// Once done in a transaction it is not done again for a now no later:
// no live lot becomes due meanwhile, as every path that adds or gives
// back points to a lot already due expires it at once (addLot,
// giveBack). A burn checked online asks twice (checkOnline, applyLots).
// need is what a burn that follows will take (0: none): the read of
// the due lots goes on through the live ones until they hold it, and
// the burn's takes use that read (readLots, takeLotsRead).
func (s *state) expireDue(t protocol.TenantID, cu protocol.CustomerID, now, need int64) error {
	k := key2{string(t), string(cu)}
	prev, done := s.expiredAt[k]
	if done && prev >= now {
		return nil
	}
	if err := s.expireDueQuery(t, cu, now, need); err != nil {
		return err
	}
	if s.expiredAt == nil {
		s.expiredAt = map[key2]int64{}
	}
	s.expiredAt[k] = now
	if s.epoch != 0 { // the online writer's basket: undone with it
		s.undoLog = append(s.undoLog, func() {
			if done {
				s.expiredAt[k] = prev
			} else {
				delete(s.expiredAt, k)
			}
		})
	}
	return nil
}

func (s *state) expireDueQuery(t protocol.TenantID, cu protocol.CustomerID, now, need int64) error {
	lots, due, complete, err := s.readLots(t, cu, now, need, 0)
	if err != nil {
		return err
	}
	for _, d := range due {
		if err := s.expireLot(t, cu, protocol.CampaignID(d.camp), d.id, d.rem, d.exp, now); err != nil {
			return err
		}
	}
	s.lotsRead = &lotsRead{k: key2{string(t), string(cu)}, now: now, lots: lots, complete: complete}
	return nil
}

// liveLot is one live lot as qLotsStream reads it.
type liveLot struct {
	id, rem, exp int64
	camp         string
}

// lotsRead is what the customer's last expireDue read of its live lots
// after the due ones: the burn's takes that follow it in the same basket
// (takePoints) take from it instead of reading again. Any write to a lot
// drops it (lotsChanged).
type lotsRead struct {
	k        key2
	now      int64
	lots     []liveLot
	complete bool // every live lot, not only up to the need
}

// lotsChanged drops the lots read: a lot was written.
func (s *state) lotsChanged() { s.lotsRead = nil }

// takeLotsRead returns the lots expireDue read for the customer at now,
// if they hold the n points a burn takes (besides lot skip) or are every
// live lot.
func (s *state) takeLotsRead(t protocol.TenantID, cu protocol.CustomerID, now, n, skip int64) ([]liveLot, bool) {
	r := s.lotsRead
	if r == nil || r.k != (key2{string(t), string(cu)}) || r.now != now {
		return nil, false
	}
	if r.complete {
		return r.lots, true
	}
	var sum int64
	for _, lt := range r.lots {
		if lt.id != skip {
			sum += lt.rem
		}
	}
	return r.lots, sum >= n
}

// errLotsEnough stops readLots's read.
var errLotsEnough = errors.New("ledger: lots enough")

// readLots reads the customer's live lots in the order a burn reaches
// them (qLotsStream): the ones due at now apart, then the others until
// they hold need points besides lot skip (need 0: none of them).
// complete is whether the read reached the last live lot.
func (s *state) readLots(t protocol.TenantID, cu protocol.CustomerID, now, need, skip int64) (lots, due []liveLot, complete bool, err error) {
	var sum int64
	complete = true
	err = s.queryScan(qLotsStream, []any{string(t), string(cu)}, func(row rowScanner) error {
		var lt liveLot
		if err := row.Scan(&lt.id, &lt.camp, &lt.rem, &lt.exp); err != nil {
			return err
		}
		if lt.exp != 0 && lt.exp <= now {
			due = append(due, lt)
			return nil
		}
		if sum >= need {
			complete = false
			return errLotsEnough
		}
		lots = append(lots, lt)
		if lt.id != skip {
			sum += lt.rem
		}
		return nil
	})
	if errors.Is(err, errLotsEnough) {
		err = nil
	}
	return lots, due, complete, err
}

// expireLot zeroes lot (rem points left, due at exp), journals it, and
// takes the points off the customer's balance cell.
func (s *state) expireLot(t protocol.TenantID, cu protocol.CustomerID, camp protocol.CampaignID, lot, rem, exp, now int64) error {
	s.lotsChanged()
	if rem <= 0 {
		return nil
	}
	if _, err := s.exec(insExpired, string(t), string(protocol.HubSender), string(cu), string(camp), -rem,
		int64(HLCFromTime(time.UnixMicro(exp))), lot, now); err != nil {
		return err
	}
	if _, err := s.exec(upLotExpire, lot); err != nil {
		return err
	}
	c, err := s.customer(t, cu)
	if err != nil {
		return err
	}
	c.v -= rem
	return nil
}

// DefaultExpiryChunk is how many lots one transaction of ExpireLots
// expires at most, so that the write lock is never held long.
const DefaultExpiryChunk = 5000

// ExpireLots expires every lot due at now: each is zeroed and journaled
// (points_expired, one entry per lot) and its customer's balance lowered,
// in the same transaction, chunk lots at a time (0: DefaultExpiryChunk).
// It is idempotent: a second run finds nothing due. It takes the write
// lock like every writer, so a burn of the same points is either before
// it (the lot has less left to expire) or after it (the lot is empty).
func (l *Ledger) ExpireLots(ctx context.Context, now time.Time, chunk int) (lots, points int64, err error) {
	if chunk <= 0 {
		chunk = DefaultExpiryChunk
	}
	for {
		n, p, err := l.expireChunk(ctx, micros(now), chunk)
		lots, points = lots+n, points+p
		if err != nil || n < int64(chunk) {
			return lots, points, err
		}
	}
}

func (l *Ledger) expireChunk(ctx context.Context, now int64, chunk int) (n, points int64, err error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, wrap("expire lots: begin", err)
	}
	defer tx.Rollback()
	stmts := []struct {
		q    string
		args []any
	}{
		{`CREATE TEMP TABLE IF NOT EXISTS ledger_lots_due (id INTEGER PRIMARY KEY, tenant TEXT, customer TEXT, campaign TEXT, remaining INTEGER, expires_at INTEGER)`, nil},
		{`DELETE FROM temp.ledger_lots_due`, nil},
		{`INSERT INTO temp.ledger_lots_due SELECT id, tenant, customer, campaign, remaining, expires_at FROM ledger_points_lots
			WHERE remaining > 0 AND expires_at > 0 AND expires_at <= ? ORDER BY expires_at LIMIT ?`, []any{now, chunk}},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return 0, 0, wrap("expire lots", err)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(remaining), 0) FROM temp.ledger_lots_due`).Scan(&n, &points); err != nil {
		return 0, 0, wrap("expire lots", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	stmts = []struct {
		q    string
		args []any
	}{
		{`INSERT INTO ledger_journal (tenant, entry, agent, seq, customer, campaign, points, psign, hlc, lot, received_at)
			SELECT tenant, '` + pledger.EntryPointsExpired + `', ?, NULL, customer, campaign, -remaining, 1, (expires_at / 1000) << 16, id, ?
			FROM temp.ledger_lots_due ORDER BY id`, []any{string(protocol.HubSender), now}},
		{`UPDATE ledger_points_lots SET expired = expired + remaining, remaining = 0 WHERE id IN (SELECT id FROM temp.ledger_lots_due)`, nil},
		// One points.expired event per customer and campaign (events.go); the
		// WHERE keeps it out of a ledger opened with NoEvents.
		{`INSERT INTO ledger_events (tenant, type, at, v, body)
			SELECT tenant, '` + EventPointsExpired + `', ?, 1, json_object('customer', customer, 'campaign', campaign, 'points', SUM(remaining), 'lots', COUNT(*))
			FROM temp.ledger_lots_due WHERE ? GROUP BY tenant, customer, campaign`, []any{now, !l.noEvents}},
		{`INSERT INTO ledger_customer_rows (tenant, customer, kind, n1)
			SELECT tenant, customer, 0, -SUM(remaining) FROM temp.ledger_lots_due WHERE true GROUP BY tenant, customer
			ON CONFLICT (tenant, customer, kind, k1, k2) DO UPDATE SET n1 = n1 + excluded.n1`, nil},
		{`INSERT INTO ledger_points_totals (tenant, points)
			SELECT tenant, -SUM(remaining) FROM temp.ledger_lots_due WHERE true GROUP BY tenant
			ON CONFLICT (tenant) DO UPDATE SET points = points + excluded.points`, nil},
		{`DELETE FROM temp.ledger_lots_due`, nil},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return 0, 0, wrap("expire lots", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, wrap("expire lots: commit", err)
	}
	if n > 0 && !l.noEvents && l.onEvents != nil {
		l.onEvents() // points.expired events (events.go)
	}
	return n, points, nil
}

// PointsLots lists a customer's lots that still hold points (or a debt),
// soonest expiry first, never-expiring last. A lot that is due but not yet
// expired by the job shows as expired.
func (l *Ledger) PointsLots(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) ([]pledger.PointsLot, error) {
	now := micros(l.now())
	rows, err := l.db.QueryContext(ctx, `SELECT id, campaign, amount, remaining, expired, earned_at, expires_at, src_agent, src_seq, debt
		FROM ledger_points_lots WHERE tenant = ? AND customer = ? AND remaining != 0 ORDER BY expires_at = 0, expires_at, id`, string(tenant), string(customer))
	if err != nil {
		return nil, wrap("points lots", err)
	}
	defer rows.Close()
	out := []pledger.PointsLot{}
	for rows.Next() {
		var lt pledger.PointsLot
		var camp, agent string
		var seq sql.NullInt64
		var earned, expires int64
		if err := rows.Scan(&lt.ID, &camp, &lt.Amount, &lt.Remaining, &lt.Expired, &earned, &expires, &agent, &seq, &lt.Debt); err != nil {
			return nil, wrap("points lots", err)
		}
		lt.Campaign = protocol.CampaignID(camp)
		if earned != 0 {
			lt.EarnedAt = time.UnixMicro(earned).UTC()
		}
		if expires != 0 {
			lt.ExpiresAt = time.UnixMicro(expires).UTC()
			if expires <= now && lt.Remaining > 0 {
				lt.Expired += lt.Remaining
				lt.Remaining = 0
				continue // due: gone for the customer
			}
		}
		if seq.Valid {
			lt.Source = protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq.Int64)}
		}
		out = append(out, lt)
	}
	return out, wrap("points lots", rows.Err())
}

// laterExpiry is the re-derivation's check of an earn's expiry
// (guarantee 9): a till may not keep points longer than the rules say.
// An earn without an expiry is taken as the rules give it only from a
// till that sends none (older than Redemption.Expires): its lot then never
// expires, as before lots.
func laterExpiry(r protocol.Redemption, earnings []rules.Earning) string {
	if r.Expires == 0 {
		return ""
	}
	for _, e := range earnings {
		if e.Campaign == r.Campaign && e.Points == r.Points && (e.ExpiresAt.IsZero() || r.Expires <= e.ExpiresAt.UnixMicro()) {
			return ""
		}
	}
	return fmt.Sprintf("points expire %s, later than the rules give", time.UnixMicro(r.Expires).UTC().Format(timeFormat))
}
