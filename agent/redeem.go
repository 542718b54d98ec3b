package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// MaxTxnIDLen bounds the POS transaction id.
const MaxTxnIDLen = 128

// RedeemRequest asks to apply a basket's rewards for good. TxnID is the
// POS's transaction id: a retry with the same id and basket gets the same
// answer and never a second redemption.
type RedeemRequest struct {
	TxnID string `json:"txn_id"`
	Basket
}

// Fact is one recorded redemption as the POS sees it.
type Fact struct {
	ID       protocol.RedemptionID  `json:"id"`
	Kind     string                 `json:"kind"`
	Campaign protocol.CampaignID    `json:"campaign,omitempty"`
	Code     protocol.CodeID        `json:"code,omitempty"`
	Discount int64                  `json:"discount,omitempty"`
	Spend    int64                  `json:"spend,omitempty"`
	Points   int64                  `json:"points,omitempty"`
	HLC      uint64                 `json:"hlc"`
	Ref      *protocol.RedemptionID `json:"ref,omitempty"`
}

// Receipt is the durable answer to redeem, earn and rollback. It is stored
// with the redemptions and replayed verbatim on a retry.
type Receipt struct {
	TxnID    string `json:"txn_id"`
	Op       string `json:"op"`
	Offline  bool   `json:"offline"`
	Facts    []Fact `json:"redemptions"`
	Quote    *Quote `json:"quote,omitempty"`
	Points   int64  `json:"points_earned,omitempty"`
	Replayed bool   `json:"replayed,omitempty"` // set on a retry, not stored
}

func checkTxnID(id string) error {
	if id == "" {
		return protocol.FieldError("txn_id", "txn_id is required")
	}
	if len(id) > MaxTxnIDLen {
		return protocol.FieldError("txn_id", "txn_id is longer than %d characters", MaxTxnIDLen)
	}
	return nil
}

func hashOf(v any) []byte {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return h[:]
}

// replay returns the stored receipt of a committed request.
func (a *Agent) replay(ctx context.Context, op agentdb.Op, txn string, hash []byte) (*Receipt, error) {
	res, h, ok, err := a.db.Lookup(ctx, op, txn)
	if err != nil || !ok {
		return nil, err
	}
	if hash != nil && !bytes.Equal(h, hash) {
		return nil, protocol.NewError(protocol.CodeIdempotencyReuse)
	}
	return decodeReceipt(res)
}

func decodeReceipt(b []byte) (*Receipt, error) {
	var r Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("agent: stored receipt: %w", err)
	}
	r.Replayed = true
	return &r, nil
}

// RefusedError is a redeem refusal with the quote that explains it.
type RefusedError struct {
	Err   *protocol.Error
	Quote Quote
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Redeem evaluates the basket and, when every redeemable applies, records
// its redemptions, outbox rows, allowance and code usage in one durable
// transaction before answering. Reason codes: those of Validate (as a
// *RefusedError carrying the quote), needs_hub, offline_limit_reached,
// code_already_used, insufficient_balance, allowance_exhausted and
// idempotency_key_reused.
func (a *Agent) Redeem(ctx context.Context, r RedeemRequest) (*Receipt, error) {
	if err := checkTxnID(r.TxnID); err != nil {
		return nil, err
	}
	hash := hashOf(r)
	if rc, err := a.replay(ctx, agentdb.OpRedeem, r.TxnID, hash); err != nil || rc != nil {
		return rc, err
	}
	rc, err := a.redeem(ctx, r, hash)
	if err != nil {
		// A concurrent retry of the same request may have committed first
		// (its redemption then makes this evaluation refuse): answer as a
		// retry, never with a refusal of what was granted.
		if again, rerr := a.replay(ctx, agentdb.OpRedeem, r.TxnID, hash); rerr == nil && again != nil {
			return again, nil
		}
	}
	return rc, err
}

func (a *Agent) redeem(ctx context.Context, r RedeemRequest, hash []byte) (*Receipt, error) {
	d, err := a.evaluate(ctx, r.Basket, true)
	if err != nil {
		return nil, err
	}
	q := d.quote(r.Redeemables)
	if q.Error != nil && q.Error.Code == protocol.CodeAllowanceExhausted && a.topUp(ctx, d) {
		if d, err = a.evaluate(ctx, r.Basket, true); err != nil {
			return nil, err
		}
		q = d.quote(r.Redeemables)
	}
	if q.Error != nil {
		return nil, &RefusedError{Err: q.Error, Quote: q}
	}
	req := agentdb.Request{Op: agentdb.OpRedeem, TxnID: r.TxnID, Hash: hash, Envelope: d.v.env}
	for _, res := range d.dec.Results {
		if !res.Applied {
			continue
		}
		fact := agentdb.Fact{Redemption: a.redemption(d, r.TxnID, r.Order)}
		rd := &fact.Redemption
		rd.Kind, rd.Campaign, rd.Code = protocol.KindRedeem, res.Campaign, res.Code
		rd.Discount, rd.Spend = res.Discount+res.ShippingDiscount, res.Spend
		if res.PointsBurned > 0 {
			rd.Points = -res.PointsBurned
		}
		if d.v.limited[res.Campaign] {
			fact.Allowance = &agentdb.AllowanceUse{Count: 1, Amount: rd.Discount}
		}
		if res.Index >= 0 && res.Index < len(d.inputOf) {
			in := d.inputs[d.inputOf[res.Index]]
			fact.Code = &agentdb.CodeUse{Uses: 1, Spend: res.Spend, MaxUses: in.maxUses, KnownUses: in.known, Balance: in.balance}
			if d.offline && in.single && !in.bound {
				if d.v.env.PerRedemption == 0 || d.v.env.Count == 0 {
					return nil, protocol.NewError(protocol.CodeNeedsHub)
				}
				fact.Risk = max(rd.Discount+rd.Spend, 1)
			}
		}
		req.Facts = append(req.Facts, fact)
	}
	if len(req.Facts) == 0 {
		return nil, &RefusedError{Err: protocol.NewError(protocol.CodeNoEffect), Quote: q}
	}
	return a.commit(ctx, req, func(rc *Receipt) { rc.Offline, rc.Quote = d.offline, &q })
}

func (a *Agent) redemption(d *decision, txn string, o protocol.Order) protocol.Redemption {
	rd := protocol.Redemption{ID: protocol.RedemptionID{Agent: a.ID}, Tenant: a.Tenant, Store: d.v.snap.Store.ID, TxnID: txn,
		OrderID: o.ID, Currency: o.Currency, OrderTot: o.Subtotal(), Offline: d.offline, Snapshot: d.v.snap.Version}
	if d.customer != nil {
		rd.Customer = d.customer.ID
	}
	return rd
}

func (a *Agent) commit(ctx context.Context, req agentdb.Request, fill func(*Receipt)) (*Receipt, error) {
	var rc Receipt
	req.Result = func(rs []protocol.Redemption) ([]byte, error) {
		rc = Receipt{TxnID: req.TxnID, Op: string(req.Op)}
		fill(&rc)
		for _, r := range rs {
			rc.Facts = append(rc.Facts, Fact{ID: r.ID, Kind: r.Kind.String(), Campaign: r.Campaign, Code: r.Code,
				Discount: r.Discount, Spend: r.Spend, Points: r.Points, HLC: r.HLC, Ref: r.Ref})
		}
		return json.Marshal(rc)
	}
	res, replayed, err := a.db.Commit(ctx, req)
	if err != nil {
		return nil, err
	}
	if replayed {
		return decodeReceipt(res)
	}
	if b := a.link.Load(); b != nil {
		if k, ok := b.Link.(interface{ Kick() }); ok {
			k.Kick()
		}
	}
	return &rc, nil
}

// topUp asks the hub for more allowance for every limited campaign that
// ran out, when online. It reports whether anything was granted.
func (a *Agent) topUp(ctx context.Context, d *decision) bool {
	link, on := a.online()
	if !on {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, a.AllowanceWait)
	defer cancel()
	granted := false
	seen := map[protocol.CampaignID]bool{}
	for _, res := range d.dec.Results {
		if res.Applied || res.Reason != protocol.CodeBudgetExhausted || !d.v.limited[res.Campaign] || seen[res.Campaign] {
			continue
		}
		seen[res.Campaign] = true
		al, err := link.RequestAllowance(ctx, res.Campaign)
		if err != nil {
			a.Logger.Warn("agent: allowance request failed", LogKeyCampaign, res.Campaign, "err", err)
			continue
		}
		if al.Count == 0 && al.Amount == 0 {
			continue
		}
		if ok, err := a.db.Grant(ctx, al); err == nil && ok {
			granted = true
		}
	}
	return granted
}

// EarnRequest asks to credit loyalty points for a paid order.
type EarnRequest struct {
	TxnID    string             `json:"txn_id"`
	Order    protocol.Order     `json:"order"`
	Customer *protocol.Customer `json:"customer"`
}

// Earn records the points the catalog's loyalty programs give for the
// order. Reason codes: customer_required, never_synced, snapshot_stale,
// invalid_input, no_effect, idempotency_key_reused.
func (a *Agent) Earn(ctx context.Context, r EarnRequest) (*Receipt, error) {
	if err := checkTxnID(r.TxnID); err != nil {
		return nil, err
	}
	if r.Customer == nil || r.Customer.ID == "" {
		return nil, protocol.NewError(protocol.CodeCustomerRequired)
	}
	hash := hashOf(r)
	if rc, err := a.replay(ctx, agentdb.OpEarn, r.TxnID, hash); err != nil || rc != nil {
		return rc, err
	}
	d, err := a.evaluate(ctx, Basket{Order: r.Order, Customer: r.Customer}, false)
	if err != nil {
		return nil, err
	}
	req := agentdb.Request{Op: agentdb.OpEarn, TxnID: r.TxnID, Hash: hash, Envelope: d.v.env}
	for _, e := range d.dec.Earnings {
		fact := agentdb.Fact{Redemption: a.redemption(d, r.TxnID, r.Order)}
		fact.Redemption.Kind, fact.Redemption.Campaign, fact.Redemption.Points = protocol.KindEarn, e.Campaign, e.Points
		req.Facts = append(req.Facts, fact)
	}
	if len(req.Facts) == 0 {
		return nil, protocol.NewError(protocol.CodeNoEffect)
	}
	return a.commit(ctx, req, func(rc *Receipt) { rc.Offline, rc.Points = d.offline, d.dec.PointsEarned })
}

// RollbackRequest voids what an earlier redeem or earn recorded. TxnID is
// the transaction id of that redeem or earn.
type RollbackRequest struct {
	TxnID  string `json:"txn_id"`
	Reason string `json:"reason,omitempty"`
}

// Rollback records a rollback fact for every redemption the transaction
// made, gives back allowance and code uses, and queues them for the hub,
// whether or not the original was already synced. A retry returns the same
// answer. Reason codes: not_found, already_rolled_back, invalid_input.
func (a *Agent) Rollback(ctx context.Context, r RollbackRequest) (*Receipt, error) {
	if err := checkTxnID(r.TxnID); err != nil {
		return nil, err
	}
	if rc, err := a.replay(ctx, agentdb.OpRollback, r.TxnID, nil); err != nil || rc != nil {
		return rc, err
	}
	facts, err := a.db.Facts(ctx, agentdb.OpRedeem, r.TxnID)
	if err != nil {
		return nil, err
	}
	if len(facts) == 0 {
		if facts, err = a.db.Facts(ctx, agentdb.OpEarn, r.TxnID); err != nil {
			return nil, err
		}
	}
	if len(facts) == 0 {
		return nil, protocol.Errorf(protocol.CodeNotFound, "No sale with this transaction id was found on this till.")
	}
	v := a.view.Load()
	_, on := a.online()
	req := agentdb.Request{Op: agentdb.OpRollback, TxnID: r.TxnID, Hash: []byte("rollback")}
	for _, f := range facts {
		orig := f.Redemption
		rd := orig
		ref := orig.ID
		rd.ID, rd.Kind, rd.Ref, rd.Offline = protocol.RedemptionID{Agent: a.ID}, protocol.KindRollback, &ref, !on
		fact := agentdb.Fact{Redemption: rd, Voids: orig.ID.Seq}
		if v != nil && v.limited[orig.Campaign] && orig.Kind == protocol.KindRedeem {
			fact.Allowance = &agentdb.AllowanceUse{Count: -1, Amount: -orig.Discount}
		}
		if orig.Code != "" {
			fact.Code = &agentdb.CodeUse{Uses: -1, Spend: -orig.Spend, Balance: -1}
		}
		req.Facts = append(req.Facts, fact)
	}
	return a.commit(ctx, req, func(rc *Receipt) { rc.Offline = !on })
}

// Status is what the till's status screen and monitoring show.
type Status struct {
	Tenant          protocol.TenantID       `json:"tenant"`
	Agent           protocol.AgentID        `json:"agent"`
	Store           protocol.StoreID        `json:"store,omitempty"`
	Online          bool                    `json:"online"`
	NeverSynced     bool                    `json:"never_synced"`
	SnapshotVersion uint64                  `json:"snapshot_version"`
	SnapshotAge     float64                 `json:"snapshot_age_seconds"` // since the last successful sync; -1 when never synced
	SyncedAt        *time.Time              `json:"synced_at,omitempty"`
	Stale           bool                    `json:"stale"` // offline redemptions refused (snapshot_stale)
	OutboxDepth     int64                   `json:"outbox_depth"`
	LastSeq         uint64                  `json:"last_seq"`
	AckedWatermark  uint64                  `json:"acked_watermark"`
	LastAckAt       *time.Time              `json:"last_ack_at,omitempty"`
	HLC             uint64                  `json:"hlc"`
	Allowances      []agentdb.AllowanceLeft `json:"allowances"`
	Message         string                  `json:"message"`
}

// Status reports the agent's state.
func (a *Agent) Status(ctx context.Context) (Status, error) {
	st, err := a.db.State(ctx)
	if err != nil {
		return Status{}, err
	}
	als, err := a.db.Allowances(ctx)
	if err != nil {
		return Status{}, err
	}
	_, on := a.online()
	s := Status{Tenant: a.Tenant, Agent: a.ID, Online: on, SnapshotVersion: st.SnapshotVersion, OutboxDepth: st.OutboxDepth,
		LastSeq: st.LastSeq, AckedWatermark: st.AckedWatermark, HLC: st.HLC, Allowances: als, SnapshotAge: -1}
	if als == nil {
		s.Allowances = []agentdb.AllowanceLeft{}
	}
	if !st.AckedAt.IsZero() {
		t := st.AckedAt.UTC()
		s.LastAckAt = &t
	}
	v := a.view.Load()
	switch {
	case v == nil:
		s.NeverSynced = true
		s.Message = protocol.CodeNeverSynced.Message()
	default:
		s.Store = v.snap.Store.ID
		t := st.SyncedAt.UTC()
		s.SyncedAt = &t
		s.SnapshotAge = a.Now().Sub(st.SyncedAt).Seconds()
		maxStale := v.snap.Envelope.MaxStaleSeconds
		s.Stale = !on && maxStale >= 0 && s.SnapshotAge > float64(maxStale)
		switch {
		case s.Stale:
			s.Message = protocol.CodeSnapshotStale.Message()
		case on:
			s.Message = "Online."
		default:
			s.Message = "Offline: rewards are checked on this till within its offline limits."
		}
	}
	return s, nil
}
