package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tiers"
)

// TierCatalog is what the ledger needs of the catalog to keep tiers (it
// shares the database file: both calls run in the ledger's transaction,
// so an upgrade commits with the fact that earned it).
type TierCatalog interface {
	// TierProgramTx is the tenant's tier programme; false when none.
	TierProgramTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (tiers.Program, bool, error)
	// SetCustomerTierTx records the customer's new tier where the tills
	// read it (the snapshot), returning a non-zero catalog version (0:
	// the catalog does not know the customer). store/catalog does not
	// move the version (customer state has its own sequence,
	// ledger_017); v is a version tx already moved the tenant to.
	SetCustomerTierTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, customer protocol.CustomerID, tier string, v uint64) (uint64, error)
}

// customerChanger is a TierCatalog with a read cache of customers
// (store/catalog): a tier change that does not move the catalog version
// tells it after the commit.
type customerChanger interface {
	CustomerChanged(tenant protocol.TenantID)
}

// Tier history reasons.
const (
	TierUpgrade   = "upgrade"
	TierDowngrade = "downgrade"
)

// tierNotes collects the catalog versions tier changes made, to be
// announced after the transaction that made them commits (Options.OnTier).
type tierNotes struct {
	mu sync.Mutex
	m  map[protocol.TenantID]uint64
}

func (n *tierNotes) add(t protocol.TenantID, v uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[protocol.TenantID]uint64{}
	}
	n.m[t] = max(n.m[t], v)
}

// tiersCommitted announces the tier changes noted so far. SQLite has one
// writer: a change noted by a transaction still open cannot be overtaken
// by another's commit, and one rolled back announces a version the tills
// already hold, which costs them nothing.
func (l *Ledger) tiersCommitted() {
	if l.onTier == nil {
		return
	}
	l.tierNotes.mu.Lock()
	m := l.tierNotes.m
	l.tierNotes.m = nil
	l.tierNotes.mu.Unlock()
	cc, _ := l.tierCat.(customerChanger)
	for t, v := range m {
		if cc != nil {
			cc.CustomerChanged(t)
		}
		l.onTier(t, v)
	}
}

// tierRow is a customer's current tier.
type tierRow struct {
	tier                     string
	since, validUntil, revAt int64
}

func getTier(ctx context.Context, tx *sql.Tx, t protocol.TenantID, cu protocol.CustomerID) (tierRow, bool, error) {
	var r tierRow
	err := tx.QueryRowContext(ctx, `SELECT tier, since, valid_until, review_at FROM ledger_customer_tiers WHERE tenant = ? AND customer = ?`,
		string(t), string(cu)).Scan(&r.tier, &r.since, &r.validUntil, &r.revAt)
	if errors.Is(err, sql.ErrNoRows) {
		return tierRow{}, false, nil
	}
	if err != nil {
		return tierRow{}, false, fmt.Errorf("tier: %w", err)
	}
	return r, true, nil
}

// tierMeasure is the customer's measure over [from, to).
func tierMeasure(ctx context.Context, tx *sql.Tx, p *tiers.Program, t protocol.TenantID, cu protocol.CustomerID, from, to time.Time) (int64, error) {
	var n int64
	var err error
	if p.Measure == tiers.MeasureSpend {
		// One order total per till transaction with an earn or a redeem
		// by the customer, not rolled back.
		err = tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(t), 0) FROM (SELECT MAX(j.order_total) AS t FROM ledger_journal j
			WHERE j.tenant = ?1 AND j.customer = ?2 AND j.received_at >= ?3 AND j.received_at < ?4 AND j.ref_agent IS NULL AND j.seq IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM ledger_journal r WHERE r.tenant = j.tenant AND r.ref_agent = j.agent AND r.ref_seq = j.seq)
			GROUP BY j.agent, j.txn_id)`, string(t), string(cu), micros(from), micros(to)).Scan(&n)
	} else {
		err = tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM ledger_points_lots
			WHERE tenant = ? AND customer = ? AND debt = 0 AND voided = 0 AND earned_at >= ? AND earned_at < ?`,
			string(t), string(cu), micros(from), micros(to)).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("tier measure: %w", err)
	}
	return n, nil
}

// setTier writes the customer's tier (deleting the row for no tier), its
// history when it changed, and tells the catalog; versions, when not nil,
// holds the catalog version tx moved each tenant to (the review shares
// one per tenant and transaction; a fact's upgrade, under the online
// writer's savepoints, moves its own).
func (l *Ledger) setTier(ctx context.Context, tx *sql.Tx, p *tiers.Program, t protocol.TenantID, cu protocol.CustomerID, old tierRow, tier, reason string, at time.Time, src *protocol.RedemptionID, versions map[protocol.TenantID]uint64) error {
	if tier == "" {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ledger_customer_tiers WHERE tenant = ? AND customer = ?`, string(t), string(cu)); err != nil {
			return fmt.Errorf("tier: %w", err)
		}
	} else {
		until := p.ValidUntil(at)
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_customer_tiers (tenant, customer, tier, since, valid_until, review_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, customer) DO UPDATE SET tier = excluded.tier, since = excluded.since, valid_until = excluded.valid_until, review_at = excluded.review_at`,
			string(t), string(cu), tier, micros(at), micros(until), micros(p.Review(until))); err != nil {
			return fmt.Errorf("tier: %w", err)
		}
	}
	var srcAgent, srcSeq any = "", nil
	if src != nil {
		srcAgent, srcSeq = string(src.Agent), int64(src.Seq)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_tier_history (tenant, customer, at, from_tier, to_tier, reason, src_agent, src_seq, after_entry)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(id), 0) FROM ledger_journal))`, // its place in the history (history.go)
		string(t), string(cu), micros(at), old.tier, tier, reason, srcAgent, srcSeq); err != nil {
		return fmt.Errorf("tier history: %w", err)
	}
	if !l.noEvents {
		e := tierEvent{Customer: string(cu), From: old.tier, To: tier, Reason: reason}
		if src != nil {
			e.Agent, e.Seq = string(src.Agent), src.Seq
		}
		if err := insertEventTx(ctx, tx, t, EventTierChanged, l.now(), e); err != nil { // events.go
			return err
		}
		l.noteEvents()
	}
	v, err := l.tierCat.SetCustomerTierTx(ctx, tx, t, cu, tier, versions[t])
	if err != nil {
		return err
	}
	if v > 0 {
		l.tierNotes.add(t, v)
		if versions != nil {
			versions[t] = v
		}
	}
	return nil
}

// program is the tenant's tier programme, read once per state.
func (s *state) tierProgram(t protocol.TenantID) (*tiers.Program, error) {
	if p, ok := s.tierProgs[t]; ok {
		return p, nil
	}
	p, found, err := s.l.tierCat.TierProgramTx(s.ctx, s.tx, t)
	if err != nil {
		return nil, err
	}
	var out *tiers.Program
	if found {
		out = &p
	}
	if s.tierProgs == nil {
		s.tierProgs = map[protocol.TenantID]*tiers.Program{}
	}
	s.tierProgs[t] = out
	return out, nil
}

// applyTier raises the customer of r to the highest tier their measure
// now reaches, in r's transaction (after applyLots and the journal row),
// or extends the validity of the tier they keep qualifying for. It never
// lowers a tier: that is the review's (ReviewTiers), at period end.
func (l *Ledger) applyTier(s *state, r *protocol.Redemption, now time.Time) error {
	if l.tierCat == nil || r.Customer == "" || r.Kind == protocol.KindRollback {
		return nil
	}
	p, err := s.tierProgram(r.Tenant)
	if err != nil || p == nil {
		return err
	}
	at := now
	if r.ID.Agent != protocol.HubSender && r.HLC != 0 {
		at = l.hlcTime(r.HLC)
	}
	if p.Measure == tiers.MeasureSpend {
		if err := s.flushJournal(); err != nil {
			return err
		}
	}
	total, err := tierMeasure(s.ctx, s.tx, p, r.Tenant, r.Customer, p.WindowStart(at), at.Add(time.Microsecond))
	if err != nil {
		return err
	}
	q := p.Qualify(total)
	if q == "" {
		return nil
	}
	cur, _, err := getTier(s.ctx, s.tx, r.Tenant, r.Customer)
	if err != nil {
		return err
	}
	if err := s.savepoint(); err != nil {
		return err
	}
	switch rq, rc := p.Rank(q), p.Rank(cur.tier); {
	case rq > rc:
		return l.setTier(s.ctx, s.tx, p, r.Tenant, r.Customer, cur, q, TierUpgrade, at, &r.ID, nil)
	case rq == rc && micros(p.ValidUntil(at)) > cur.validUntil:
		until := p.ValidUntil(at)
		_, err := s.tx.ExecContext(s.ctx, `UPDATE ledger_customer_tiers SET valid_until = ?, review_at = ? WHERE tenant = ? AND customer = ?`,
			micros(until), micros(p.Review(until)), string(r.Tenant), string(r.Customer))
		return err
	}
	return nil
}

// DefaultTierChunk is how many customers one ReviewTiers transaction
// reviews.
const DefaultTierChunk = 500

// ReviewTiers reviews every customer tier whose review is due at now (its
// validity and grace period over): a customer who still qualifies (over
// the current window or, for a calendar window, the last complete
// period) keeps the tier, valid one more period; one who does not drops
// to the tier they qualify for (none: the row goes), with a history entry.
// It is idempotent: a review moves review_at past now or removes the row.
// It returns how many tiers it lowered.
func (l *Ledger) ReviewTiers(ctx context.Context, now time.Time) (lowered int, err error) {
	if l.tierCat == nil {
		return 0, nil
	}
	for {
		n, low, err := l.reviewChunk(ctx, now, DefaultTierChunk)
		lowered += low
		if err != nil || n < DefaultTierChunk {
			return lowered, err
		}
	}
}

func (l *Ledger) reviewChunk(ctx context.Context, now time.Time, chunk int) (n, lowered int, err error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, wrap("review tiers: begin", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT tenant, customer, tier, since, valid_until, review_at FROM ledger_customer_tiers WHERE review_at <= ? ORDER BY review_at LIMIT ?`,
		micros(now), chunk)
	if err != nil {
		return 0, 0, wrap("review tiers", err)
	}
	type due struct {
		t  protocol.TenantID
		cu protocol.CustomerID
		r  tierRow
	}
	var dues []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.t, &d.cu, &d.r.tier, &d.r.since, &d.r.validUntil, &d.r.revAt); err != nil {
			rows.Close()
			return 0, 0, wrap("review tiers", err)
		}
		dues = append(dues, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, wrap("review tiers", err)
	}
	progs := map[protocol.TenantID]*tiers.Program{}
	versions := map[protocol.TenantID]uint64{}
	for _, d := range dues {
		p, ok := progs[d.t]
		if !ok {
			pr, found, err := l.tierCat.TierProgramTx(ctx, tx, d.t)
			if err != nil {
				return 0, 0, err
			}
			if found {
				p = &pr
			}
			progs[d.t] = p
		}
		if p == nil { // the programme is gone: so is the tier
			if err := l.setTier(ctx, tx, &tiers.Program{}, d.t, d.cu, d.r, "", TierDowngrade, now, nil, versions); err != nil {
				return 0, 0, err
			}
			lowered++
			continue
		}
		cur, err := tierMeasure(ctx, tx, p, d.t, d.cu, p.WindowStart(now), now.Add(time.Microsecond))
		if err != nil {
			return 0, 0, err
		}
		from, to := p.PreviousWindow(now)
		prev, err := tierMeasure(ctx, tx, p, d.t, d.cu, from, to)
		if err != nil {
			return 0, 0, err
		}
		q := p.Qualify(max(cur, prev))
		if rc := p.Rank(d.r.tier); rc > 0 && p.Rank(q) >= rc {
			until := p.ValidUntil(now)
			if _, err := tx.ExecContext(ctx, `UPDATE ledger_customer_tiers SET tier = ?, valid_until = ?, review_at = ? WHERE tenant = ? AND customer = ?`,
				q, micros(until), micros(p.Review(until)), string(d.t), string(d.cu)); err != nil {
				return 0, 0, wrap("review tiers", err)
			}
			if q != d.r.tier { // qualified higher meanwhile without a fact (a programme change)
				if err := l.setTier(ctx, tx, p, d.t, d.cu, d.r, q, TierUpgrade, now, nil, versions); err != nil {
					return 0, 0, err
				}
			}
			continue
		}
		if err := l.setTier(ctx, tx, p, d.t, d.cu, d.r, q, TierDowngrade, now, nil, versions); err != nil {
			return 0, 0, err
		}
		lowered++
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, wrap("review tiers: commit", err)
	}
	l.tiersCommitted()
	l.eventsCommitted() // events.go
	return len(dues), lowered, nil
}

// CustomerTier is the customer's current tier as the ledger keeps it (the
// zero State when they have none).
func (l *Ledger) CustomerTier(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (tiers.State, error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return tiers.State{}, wrap("customer tier", err)
	}
	defer tx.Rollback()
	r, ok, err := getTier(ctx, tx, tenant, customer)
	if err != nil || !ok {
		return tiers.State{}, err
	}
	return tiers.State{Tier: r.tier, Since: time.UnixMicro(r.since).UTC(), ValidUntil: time.UnixMicro(r.validUntil).UTC(), ReviewAt: time.UnixMicro(r.revAt).UTC()}, nil
}

// TierHistory lists the customer's tier changes, newest first, at most
// limit (0: all).
func (l *Ledger) TierHistory(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int) ([]tiers.Change, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := l.db.QueryContext(ctx, `SELECT at, from_tier, to_tier, reason, src_agent, src_seq FROM ledger_tier_history
		WHERE tenant = ? AND customer = ? ORDER BY id DESC LIMIT ?`, string(tenant), string(customer), limit)
	if err != nil {
		return nil, wrap("tier history", err)
	}
	defer rows.Close()
	out := []tiers.Change{}
	for rows.Next() {
		var c tiers.Change
		var at int64
		var seq sql.NullInt64
		var agent string
		if err := rows.Scan(&at, &c.From, &c.To, &c.Reason, &agent, &seq); err != nil {
			return nil, wrap("tier history", err)
		}
		c.At = time.UnixMicro(at).UTC()
		if seq.Valid {
			c.Fact = fmt.Sprintf("%s/%d", agent, seq.Int64)
		}
		out = append(out, c)
	}
	return out, wrap("tier history", rows.Err())
}
