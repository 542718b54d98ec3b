package ledger

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Redeem records a redemption the hub makes itself, for its online channels
// (web shop, app, support desk). Unlike an agent's offline fact, it is
// checked first, under the write lock, against the kill switch, code uses,
// gift card balance, per-customer limit, points balance and the campaign
// budget less every agent's outstanding allowance; so N concurrent Redeems
// of a single-use code give exactly one success.
//
// It goes through the online writer as a basket of one (RedeemBasket).
//
// The ledger assigns r.ID (HubSender and the next hub seq) and, when zero,
// r.HLC. A repeated call with the same TxnID, kind, campaign and code
// returns the first redemption (CodeIdempotencyReuse if the amounts
// differ). A rollback copies the voided redemption's fields from the
// journal.
//
// Reason codes: invalid_input, campaign_unknown, campaign_stopped,
// code_unknown, code_already_used, insufficient_balance, customer_required,
// customer_limit_reached, insufficient_points, budget_exhausted, not_found,
// already_rolled_back, idempotency_key_reused.
func (l *Ledger) Redeem(ctx context.Context, r protocol.Redemption) (protocol.Redemption, error) {
	if err := protocol.ValidateID("tenant", string(r.Tenant)); err != nil {
		return r, err
	}
	out, _, err := l.RedeemBasket(ctx, Basket{Tenant: r.Tenant, Redemptions: []protocol.Redemption{r}})
	if err != nil {
		var ie *ItemError
		if errors.As(err, &ie) {
			err = ie.Err
		}
		r.ID = protocol.RedemptionID{Agent: protocol.HubSender, Seq: 1}
		return r, err
	}
	return out[0], nil
}

func (l *Ledger) checkOnline(s *state, facts factSet, r protocol.Redemption, now time.Time) error {
	cf, campKnown := facts.camps[key2{string(r.Tenant), string(r.Campaign)}]
	if r.Campaign != "" && !campKnown {
		return protocol.NewError(protocol.CodeCampaignUnknown)
	}
	if r.Kind == protocol.KindRedeem && campKnown && !cf.StoppedAt.IsZero() && !now.Before(cf.StoppedAt) {
		return protocol.NewError(protocol.CodeCampaignStopped)
	}
	if r.Code != "" {
		kf, ok := facts.codes[key2{string(r.Tenant), string(r.Code)}]
		if !ok {
			return protocol.NewError(protocol.CodeUnknownCode)
		}
		if r.Kind == protocol.KindCashOut { // giftcards.go: never beyond the balance
			spent, err := s.card(r.Tenant, r.Code)
			if err != nil {
				return wrap("redeem", err)
			}
			loaded, err := cardLoaded(s, r.Tenant, r.Code)
			if err != nil {
				return wrap("redeem", err)
			}
			if !kf.GiftCard || spent.v+r.Spend > kf.InitialBalance+loaded {
				return protocol.NewError(protocol.CodeInsufficientFunds)
			}
		}
		if r.Kind == protocol.KindRedeem {
			uses, err := s.code(r.Tenant, r.Code)
			if err != nil {
				return wrap("redeem", err)
			}
			if !kf.GiftCard && kf.MaxUses > 0 && uses.v+1 > kf.MaxUses {
				return protocol.NewError(protocol.CodeCodeUsed)
			}
			if kf.GiftCard && r.Spend > 0 {
				spent, err := s.card(r.Tenant, r.Code)
				if err != nil {
					return wrap("redeem", err)
				}
				if spent.v+r.Spend > kf.InitialBalance {
					loaded, err := cardLoaded(s, r.Tenant, r.Code) // giftcards.go
					if err != nil {
						return wrap("redeem", err)
					}
					if spent.v+r.Spend > kf.InitialBalance+loaded {
						return protocol.NewError(protocol.CodeInsufficientFunds)
					}
				}
			}
		}
	}
	if r.Kind == protocol.KindRedeem && campKnown && cf.PerCustomer > 0 {
		if r.Customer == "" {
			return protocol.NewError(protocol.CodeCustomerRequired)
		}
		n, err := s.customerCampaign(r.Tenant, r.Customer, r.Campaign)
		if err != nil {
			return wrap("redeem", err)
		}
		if n.v+1 > cf.PerCustomer {
			return protocol.NewError(protocol.CodeCustomerLimit)
		}
	}
	if r.Points < 0 {
		if r.Customer == "" {
			return protocol.NewError(protocol.CodeCustomerRequired)
		}
		// Lots due now expire first (lots.go): what the customer can
		// spend is what is live.
		if err := s.savepoint(); err != nil {
			return wrap("redeem", err)
		}
		if err := s.expireDue(r.Tenant, r.Customer, micros(now), -r.Points); err != nil {
			return wrap("redeem: points lots", err)
		}
		p, err := s.customer(r.Tenant, r.Customer)
		if err != nil {
			return wrap("redeem", err)
		}
		if p.v+r.Points < 0 {
			return protocol.NewError(protocol.CodeInsufficientPts)
		}
	}
	if r.Kind == protocol.KindRedeem && campKnown && (cf.Limited() || cf.MaxOrderValue > 0) {
		c, err := s.campaign(r.Tenant, r.Campaign)
		if err != nil {
			return wrap("redeem", err)
		}
		resCount, resAmount, err := s.reserved(r.Tenant, r.Campaign)
		if err != nil {
			return wrap("redeem", err)
		}
		if (cf.MaxCount > 0 && c.v.count+resCount+1 > cf.MaxCount) ||
			(cf.MaxDiscount > 0 && c.v.discount+resAmount+r.Discount > cf.MaxDiscount) ||
			(cf.MaxOrderValue > 0 && c.v.orderValue+r.OrderTot > cf.MaxOrderValue) {
			return protocol.NewError(protocol.CodeBudgetExhausted)
		}
	}
	return nil
}

// rollbackSource returns the redemption r.Ref voids, or not_found /
// already_rolled_back.
func (l *Ledger) rollbackSource(s *state, r protocol.Redemption) (protocol.Redemption, error) {
	orig, found, err := scanRedemption(s.tx.QueryRowContext(s.ctx, selectRedemption+` WHERE tenant = ? AND agent = ? AND seq = ?`,
		string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq)))
	if err != nil {
		return orig, wrap("redeem: rollback", err)
	}
	if !found || orig.Kind == protocol.KindRollback {
		return orig, protocol.Errorf(protocol.CodeNotFound, "redemption %s is not known", r.Ref)
	}
	if orig.Kind == 0 { // a points adjustment (adjust.go): corrected by another adjustment
		return orig, protocol.Errorf(protocol.CodeNotFound, "redemption %s is a points adjustment, not a redemption: adjust the points again to correct it", r.Ref)
	}
	// Any rollback by the original's agent or the hub counts, also one
	// that arrived before the original and voided it on arrival; an
	// agent's foreign rollback (no effect) does not.
	var n int64
	if err := s.tx.QueryRowContext(s.ctx, `SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND ref_agent = ? AND ref_seq = ? AND entry = 'rollback'
		AND (agent = ref_agent OR agent = ?)`,
		string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq), string(protocol.HubSender)).Scan(&n); err != nil {
		return orig, wrap("redeem: rollback", err)
	}
	if n > 0 {
		return orig, protocol.NewError(protocol.CodeAlreadyRolledBack)
	}
	return orig, nil
}

// qByTxn is the statement of findTxn (prepared: the online path runs it
// on every basket; indexed by ledger_journal_txn).
const qByTxn = selectRedemption + ` WHERE tenant = ? AND agent = ? AND txn_id = ?`

// qByTxnIn is qByTxn for balanceChunk transaction ids at once (the online
// writer's group prefetch, prefetchTxns).
var qByTxnIn = selectRedemption + ` WHERE tenant = ? AND agent = ? AND txn_id IN (` + inList + `)`

// findTxn returns the hub's redemptions recorded under a transaction id:
// those in the journal and those of this transaction not yet written.
// The journal's are those prefetchTxns loaded for the group, if it did.
func findTxn(s *state, t protocol.TenantID, txn string) ([]protocol.Redemption, error) {
	k := key2{string(t), txn}
	if rs, ok := s.txns[k]; ok {
		return slices.Concat(rs, s.pending[k]), nil
	}
	st, err := s.stmt(qByTxn)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(s.ctx, string(t), string(protocol.HubSender), txn)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []protocol.Redemption
	for rows.Next() {
		r, _, err := scanRedemption(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return append(out, s.pending[k]...), nil
}

// prefetchTxns loads, with one IN query per tenant for the whole group,
// the hub's journal rows under the transaction ids the group's baskets
// name, which findTxn would read one query per basket (a new order's id
// almost always, that finds none). Only the rows written before the
// group are read: what the group records is in s.pending until its state
// is flushed, and a flush mid-group (a rollback's) starts a new state,
// without these.
func (s *state) prefetchTxns(rs []protocol.Redemption) error {
	ids := map[string][]string{}
	for _, r := range rs {
		k := key2{string(r.Tenant), r.TxnID}
		if r.TxnID == "" {
			continue
		}
		if _, ok := s.txns[k]; ok {
			continue
		}
		if s.txns == nil {
			s.txns = map[key2][]protocol.Redemption{}
		}
		s.txns[k] = nil // loaded: none unless the query finds some
		ids[k.tenant] = append(ids[k.tenant], k.id)
	}
	for t, txns := range ids {
		err := s.queryIn(qByTxnIn, []any{t, string(protocol.HubSender)}, txns, func(rows *sql.Rows) error {
			r, _, err := scanRedemption(rows)
			if err != nil {
				return err
			}
			k := key2{t, r.TxnID}
			s.txns[k] = append(s.txns[k], r)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// matchTxn finds r's earlier record among rs: the same kind and campaign
// and code, or for a rollback the same redemption voided.
func matchTxn(rs []protocol.Redemption, r protocol.Redemption) (protocol.Redemption, bool) {
	for _, p := range rs {
		if p.Kind != r.Kind {
			continue
		}
		if r.Kind == protocol.KindRollback {
			if p.Ref != nil && r.Ref != nil && *p.Ref == *r.Ref {
				return p, true
			}
			continue
		}
		if p.Campaign == r.Campaign && p.Code == r.Code {
			return p, true
		}
	}
	return protocol.Redemption{}, false
}

const selectRedemption = `SELECT tenant, entry, agent, seq, store, txn_id, campaign, code, customer, order_id, currency,
	discount, spend, points, order_total, hlc, offline, ref_agent, ref_seq, snapshot FROM ledger_journal`

func scanRedemption(row interface{ Scan(...any) error }) (protocol.Redemption, bool, error) {
	var r protocol.Redemption
	var tenant, entry, agent, st, campaign, code, customer, currency string
	var seq, hlc, snapshot int64
	var refAgent sql.NullString
	var refSeq sql.NullInt64
	err := row.Scan(&tenant, &entry, &agent, &seq, &st, &r.TxnID, &campaign, &code, &customer, &r.OrderID, &currency,
		&r.Discount, &r.Spend, &r.Points, &r.OrderTot, &hlc, &r.Offline, &refAgent, &refSeq, &snapshot)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	r.Tenant, r.Store, r.Campaign, r.Code, r.Customer, r.Currency = protocol.TenantID(tenant), protocol.StoreID(st),
		protocol.CampaignID(campaign), protocol.CodeID(code), protocol.CustomerID(customer), protocol.Currency(currency)
	r.ID = protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq)}
	r.HLC, r.Snapshot = uint64(hlc), uint64(snapshot)
	for k := protocol.KindRedeem; k <= protocol.KindBurn; k++ {
		if entryName(k) == entry {
			r.Kind = k
		}
	}
	for _, k := range []protocol.RedemptionKind{protocol.KindIssue, protocol.KindTopUp} {
		if entryName(k) == entry { // giftcards.go: the load rides in spend
			r.Kind, r.Load, r.Spend = k, r.Spend, 0
		}
	}
	if entry == entryName(protocol.KindCashOut) {
		r.Kind = protocol.KindCashOut
	}
	if refAgent.Valid {
		r.Ref = &protocol.RedemptionID{Agent: protocol.AgentID(refAgent.String), Seq: uint64(refSeq.Int64)}
	}
	return r, true, nil
}
