package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Referrals (ledger_014_referrals.sql, protocol/referrals.go). The
// referee's redeem of a referral code rewards the referrer in the same
// transaction, once: the fact is recorded once by (agent, seq), and a
// referee is rewarded for at most once (the table's key). The guard is
// protocol.CheckReferral, the one the hub's decision runs, on the ledger's
// figures as of the sale: a till that decided offline could not know them,
// so a refusal here is a referral_refused conflict naming the till's fact
// (the referee keeps the discount the receipt promised; the referrer gets
// nothing). A rollback of the referee's fact takes the reward back.

// ConflictReferralRefused flags a referee's redeem of a referral code that
// the referral guard refuses at the hub (self-referral, a referee who had
// bought before or was referred already, a referrer at the program's
// limit): usually a till's offline sale. The detail starts with the reason
// code. The referrer is not rewarded.
const ConflictReferralRefused ConflictKind = "referral_refused"

// Journal entries of the referrer's reward and its reversal: seq NULL, the
// agent, store and txn_id of the referee's fact (ref_agent stays NULL: it
// names a rollback's original, signs), the lot given or taken from.
const (
	EntryReferralReward   = "referral_reward"
	EntryReferralReversed = "referral_reversed"
)

const (
	qRefereeOrders = `SELECT COUNT(*) FROM ledger_purchases WHERE tenant = ? AND customer = ? AND at <= ? AND NOT (store = ? AND txn = ?)`
	qRefereeDone   = `SELECT COUNT(*) FROM ledger_referrals WHERE tenant = ? AND referee = ?`
	qReferrerN     = `SELECT COUNT(*), COALESCE(SUM(at > ?), 0) FROM ledger_referrals WHERE tenant = ? AND referrer = ?`
	qReferralOf    = `SELECT referee, referrer, campaign, code, points, lot FROM ledger_referrals WHERE tenant = ? AND agent = ? AND seq = ?`
	insReferral    = `INSERT INTO ledger_referrals (tenant, referee, referrer, campaign, code, agent, seq, at, points, lot, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	delReferral      = `DELETE FROM ledger_referrals WHERE tenant = ? AND referee = ?`
	insReferralEntry = `INSERT INTO ledger_journal (tenant, entry, agent, seq, campaign, code, customer, points, psign, hlc, store, txn_id, lot, received_at)
		VALUES (?, ?, ?, NULL, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)`
)

// referralStatements are the ones applyOne runs (hotStatements).
var referralStatements = []string{qRefereeOrders, qRefereeDone, qReferrerN, qReferralOf, insReferral, delReferral, insReferralEntry}

// referralFacts reads the guard's figures: the referee's purchases up to
// at other than (store, txn), whether the referee was referred, and the
// referrer's referees in total and after since.
func referralFacts(q querier, t protocol.TenantID, referee, referrer protocol.CustomerID, store protocol.StoreID, txn string, at, since int64) (protocol.ReferralFacts, error) {
	f := protocol.ReferralFacts{Referrer: referrer}
	var done int64
	if err := q.queryRow(qRefereeOrders, []any{&f.RefereeOrders}, string(t), string(referee), at, string(store), txn); err != nil {
		return f, err
	}
	if err := q.queryRow(qRefereeDone, []any{&done}, string(t), string(referee)); err != nil {
		return f, err
	}
	f.RefereeReferred = done > 0
	if referrer != "" {
		if err := q.queryRow(qReferrerN, []any{&f.ReferrerTotal, &f.ReferrerPeriod}, since, string(t), string(referrer)); err != nil {
			return f, err
		}
	}
	return f, nil
}

// ReferralFacts is what the hub's decision needs for the referral guard
// (hub/online): the referee's purchases so far, whether they were
// referred, and the referrer's referees in total and after since (Unix
// microseconds). Referrer is left for the caller (the catalog knows it).
func (l *Ledger) ReferralFacts(ctx context.Context, tenant protocol.TenantID, referee, referrer protocol.CustomerID, since int64) (protocol.ReferralFacts, error) {
	f, err := referralFacts(preparedq{dbq{ctx, l.db}, l.prepared}, tenant, referee, referrer, "", "", micros(l.now())+1, since)
	return f, wrap("referral facts", err)
}

// preparedq is dbq using the statements New prepared on the pool.
type preparedq struct {
	dbq
	prepared map[string]*sql.Stmt
}

func (p preparedq) queryRow(q string, dest []any, args ...any) error {
	if st, ok := p.prepared[q]; ok {
		return st.QueryRowContext(p.ctx, args...).Scan(dest...)
	}
	return p.dbq.queryRow(q, dest, args...)
}

// saleTime is when r's sale happened as recordPurchase dates it: a till's
// clock, never ahead of the hub's.
func (l *Ledger) saleTime(r *protocol.Redemption, now time.Time) time.Time {
	if r.ID.Agent != protocol.HubSender && r.HLC != 0 {
		if t := l.hlcTime(r.HLC); t.Before(now) {
			return t
		}
	}
	return now
}

// applyReferral rewards the referrer of r, a referee's redeem of a
// referral code (sign > 0), or takes the reward back when r rolls such a
// redeem back (sign < 0). It runs in applyOne after r's purchase is
// recorded.
func (l *Ledger) applyReferral(s *state, r *protocol.Redemption, cf CampaignFacts, campKnown bool, kf CodeFacts, sign int64, now time.Time,
	conflict func(kind ConflictKind, other *protocol.RedemptionID, format string, args ...any)) error {
	switch {
	case r.Kind == protocol.KindRollback && sign < 0 && r.Ref != nil:
		return l.reverseReferral(s, r, now)
	case r.Kind != protocol.KindRedeem || sign <= 0 || !campKnown || cf.Referral == nil:
		return nil
	}
	p := *cf.Referral
	at := micros(l.saleTime(r, now))
	txn := r.TxnID
	if txn == "" {
		txn = r.OrderID
	}
	f, err := referralFacts(s, r.Tenant, r.Customer, kf.Referrer, r.Store, txn, at, at-p.Period()*86_400_000_000)
	if err != nil {
		return fmt.Errorf("referrals: %w", err)
	}
	if len(p.SameAttributes) > 0 && l.segs != nil && kf.Referrer != "" {
		var attrs [2]map[string]string
		for i, cu := range []protocol.CustomerID{r.Customer, kf.Referrer} {
			if attrs[i], err = l.segs.CustomerAttributes(s.ctx, r.Tenant, cu); err != nil {
				return fmt.Errorf("referrals: customer attributes: %w", err)
			}
		}
		f.Shared = protocol.SharedAttribute(p.SameAttributes, attrs[0], attrs[1])
	}
	if e := protocol.CheckReferral(p, r.Customer, f); e != nil {
		conflict(ConflictReferralRefused, nil, "%s: %s", e.Code, e.Message)
		return nil
	}
	if err := s.savepoint(); err != nil {
		return err
	}
	nowUS := micros(now)
	var lot int64
	if p.ReferrerPoints > 0 {
		if err := s.expireDue(r.Tenant, kf.Referrer, nowUS, 0); err != nil {
			return fmt.Errorf("referrals: %w", err)
		}
		if lot, err = s.addLot(r.Tenant, kf.Referrer, p.PointsCampaign, p.ReferrerPoints, nowUS, 0, protocol.RedemptionID{}, nowUS); err != nil {
			return fmt.Errorf("referrals: %w", err)
		}
		c, err := s.customer(r.Tenant, kf.Referrer)
		if err != nil {
			return err
		}
		c.v += p.ReferrerPoints
		if _, err := s.exec(insReferralEntry, string(r.Tenant), EntryReferralReward, string(r.ID.Agent), string(p.PointsCampaign), string(r.Code),
			string(kf.Referrer), p.ReferrerPoints, int64(r.HLC), string(r.Store), txn, lot, nowUS); err != nil {
			return fmt.Errorf("referrals: journal: %w", err)
		}
	}
	if _, err := s.exec(insReferral, string(r.Tenant), string(r.Customer), string(kf.Referrer), string(r.Campaign), string(r.Code),
		string(r.ID.Agent), int64(r.ID.Seq), at, p.ReferrerPoints, lot, nowUS); err != nil {
		return fmt.Errorf("referrals: %w", err)
	}
	return nil
}

// reverseReferral takes back the reward of the referral r rolls back, if
// any: the referrer's points (from the reward's lot first, then as any
// debit, into debt if they were spent) and the referral row, so that it
// no longer counts toward the referrer's limits.
func (l *Ledger) reverseReferral(s *state, r *protocol.Redemption, now time.Time) error {
	var referee, referrer, camp, code string
	var pts, lot int64
	err := s.queryRow(qReferralOf, []any{&referee, &referrer, &camp, &code, &pts, &lot}, string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq))
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("referrals: %w", err)
	}
	if err := s.savepoint(); err != nil {
		return err
	}
	nowUS := micros(now)
	if pts > 0 {
		cu := protocol.CustomerID(referrer)
		if err := s.expireDue(r.Tenant, cu, nowUS, pts); err != nil {
			return fmt.Errorf("referrals: %w", err)
		}
		if err := s.takePoints(r.Tenant, cu, r.ID, pts, lot, nowUS); err != nil {
			return fmt.Errorf("referrals: %w", err)
		}
		c, err := s.customer(r.Tenant, cu)
		if err != nil {
			return err
		}
		c.v -= pts
		var pcamp string
		if err := s.queryRow(qLot, []any{new(int64), new(int64), new(int64), &pcamp}, lot); err != nil {
			return fmt.Errorf("referrals: %w", err)
		}
		if _, err := s.exec(insReferralEntry, string(r.Tenant), EntryReferralReversed, string(r.ID.Agent), pcamp, code,
			referrer, -pts, int64(r.HLC), string(r.Store), r.TxnID, lot, nowUS); err != nil {
			return fmt.Errorf("referrals: journal: %w", err)
		}
	}
	if _, err := s.exec(delReferral, string(r.Tenant), referee); err != nil {
		return fmt.Errorf("referrals: %w", err)
	}
	return nil
}
