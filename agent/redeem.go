package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store/agentdb"
)

// MaxTxnIDLen bounds the POS transaction id: the bound of a fact's TxnID.
const MaxTxnIDLen = protocol.MaxTxnIDLen

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
	for i := 0; i < 3 && errors.Is(err, agentdb.ErrStaleFigure); i++ {
		// Decided with a snapshot older than the own facts a prune just
		// dropped: decide again with the one in use.
		rc, err = a.redeem(ctx, r, hash)
	}
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
	if err := a.awaitWatermark(ctx); err != nil {
		return nil, err
	}
	d, q, err := a.decide(ctx, r.Basket, r.TxnID, true)
	if err != nil {
		return nil, err
	}
	if q.Error != nil {
		return nil, &RefusedError{Err: q.Error, Quote: q}
	}
	req := agentdb.Request{Op: agentdb.OpRedeem, TxnID: r.TxnID, Hash: hash, Envelope: d.v.env}
	for _, e := range d.out.Effects() {
		if e.Redemption.Kind != protocol.KindRedeem {
			continue
		}
		fact := agentdb.Fact{Redemption: a.redemption(d, r.TxnID, r.Order)}
		rd := &fact.Redemption
		rd.Kind, rd.Campaign, rd.Code = e.Redemption.Kind, e.Redemption.Campaign, e.Redemption.Code
		rd.Discount, rd.Spend, rd.Points = e.Redemption.Discount, e.Redemption.Spend, e.Redemption.Points
		rd.Cap = e.Redemption.Cap
		if e.Limited {
			fact.Allowance = &agentdb.AllowanceUse{Count: 1, Amount: rd.Discount}
		}
		if in := e.Item; in != nil && in.Kind != rules.RedeemPoints {
			// The figure the decision used (tillFacts.Uses), checked again
			// in the commit's transaction.
			hf := a.hubFigure(d.v, in.Code, in.Kind == rules.RedeemToken)
			fact.Code = &agentdb.CodeUse{Uses: 1, Spend: rd.Spend, MaxUses: in.MaxUses, KnownUses: hf.Used, Balance: in.Balance, KnownSpent: hf.Spent, Reflected: hf.Reflected}
			if d.offline && in.Single && !in.Bound {
				if d.v.env.PerRedemption == 0 || d.v.env.Count == 0 {
					return nil, protocol.NewError(protocol.CodeNeedsHub)
				}
				fact.Risk = max(rd.Discount+rd.Spend, 1)
			}
		}
		if su := d.statementUse(-rd.Points); su != nil && e.Item != nil && e.Item.Kind == rules.RedeemPoints {
			// Offline points on a statement: within the statement
			// (agentdb) and the offline risk envelope.
			if d.v.env.PerRedemption == 0 || d.v.env.Count == 0 {
				return nil, protocol.NewError(protocol.CodeNeedsHub)
			}
			fact.Statement, fact.Risk = su, max(rd.Discount+rd.Spend, 1)
		}
		req.Facts = append(req.Facts, fact)
	}
	if len(req.Facts) == 0 {
		return nil, &RefusedError{Err: protocol.NewError(protocol.CodeNoEffect), Quote: q}
	}
	// The points the quote promises (computed on the order after its
	// discounts) are recorded with the redemptions, in the same
	// transaction: quote, receipt and ledger agree, and the hub gets each
	// earn fact once under its (agent, seq). A sale already credited by
	// /earn under this txn_id keeps that credit and earns nothing here.
	points := d.dec.PointsEarned
	if earn := a.earnFacts(d, r.TxnID, r.Order); len(earn) > 0 {
		earned, err := a.db.Facts(ctx, agentdb.OpEarn, r.TxnID)
		if err != nil {
			return nil, err
		}
		if len(earned) > 0 {
			points = 0
		} else {
			req.Facts = append(req.Facts, earn...)
		}
	}
	rc, err := a.commit(ctx, req, func(rc *Receipt) { rc.Offline, rc.Quote, rc.Points = d.offline, &q, points })
	if err == nil && usesAllowance(req) {
		a.kickRefresh()
	}
	return rc, err
}

func usesAllowance(req agentdb.Request) bool {
	for _, f := range req.Facts {
		if f.Allowance != nil {
			return true
		}
	}
	return false
}

// earnFacts are the earn facts of a decision's points (decide's earn
// effects: one per earning, on the order after its discounts).
func (a *Agent) earnFacts(d *decision, txn string, o protocol.Order) []agentdb.Fact {
	var out []agentdb.Fact
	for _, e := range d.out.Effects() {
		if e.Redemption.Kind != protocol.KindEarn {
			continue
		}
		fact := agentdb.Fact{Redemption: a.redemption(d, txn, o)}
		fact.Redemption.Kind, fact.Redemption.Campaign, fact.Redemption.Points = protocol.KindEarn, e.Redemption.Campaign, e.Redemption.Points
		fact.Redemption.Cap = e.Redemption.Cap
		fact.Redemption.Expires = e.Redemption.Expires
		out = append(out, fact)
	}
	return out
}

func (a *Agent) redemption(d *decision, txn string, o protocol.Order) protocol.Redemption {
	rd := protocol.Redemption{ID: protocol.RedemptionID{Agent: a.ID}, Tenant: a.Tenant, Store: d.v.snap.Store.ID, TxnID: txn,
		OrderID: o.ID, Currency: o.Currency, OrderTot: o.Subtotal(), Offline: d.offline, Snapshot: d.v.snap.Version, Sale: d.saleOf()}
	if d.customer != nil {
		rd.Customer = d.customer.ID
	}
	return rd
}

// commitHook, set by tests only, runs after a decision and before its
// commit.
var commitHook func()

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
	if commitHook != nil {
		commitHook() // tests: between the decision and its commit
	}
	res, replayed, err := a.db.Commit(ctx, req)
	if err != nil {
		return nil, posError(err)
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

// posFields name, for the POS, the request field a fact's field came from.
var posFields = map[string]string{
	"order_id": "order.id",
	"customer": "customer.id",
	"txn_id":   "txn_id",
	"currency": "order.currency",
}

// posError turns the fact validator's refusal at commit (a fact the hub
// would not apply; nothing was recorded) into one that names the POS
// request's field: invalid_input on "order.id" rather than the fact's
// "order_id". A field with no POS counterpart is named "fact.<field>".
func posError(err error) error {
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field == "" {
		return err
	}
	f, ok := posFields[pe.Field]
	if !ok {
		f = "fact." + pe.Field
	}
	return &protocol.Error{Code: pe.Code, Message: pe.Message, Field: f}
}

// awaitWatermark holds a redeem or earn until the database has heard the
// hub's watermark once (RequireWatermark). Online, it waits up to
// AllowanceWait for the Ack that answers the agent's first heartbeat;
// otherwise it refuses with never_synced.
func (a *Agent) awaitWatermark(ctx context.Context) error {
	if !a.RequireWatermark || a.heard.Load() {
		return nil
	}
	deadline := time.Now().Add(a.AllowanceWait)
	for {
		ok, err := a.db.HeardHub(ctx)
		if err != nil {
			return err
		}
		if ok {
			a.heard.Store(true)
			return nil
		}
		if _, on := a.online(); !on || time.Now().After(deadline) {
			return protocol.Errorf(protocol.CodeNeverSynced, "This till has not finished its first sync with the hub. Try again when online.")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RefreshAllowances asks the hub, when online, for allowance for every
// limited campaign of the snapshot the agent holds none of, or whose
// allowance has fallen to the low-water mark (LowWater of the last grant).
// The sync client calls it after every sync (snapshot applied or
// confirmed, which includes every reconnect); Redeem triggers it in the
// background after using an allowance. A till that goes offline before its
// first sale of a limited campaign can then still sell it. It returns the
// first error; refusals (budget_exhausted, campaign_stopped) are only
// logged.
func (a *Agent) RefreshAllowances(ctx context.Context) error {
	v := a.view.Load()
	link, on := a.online()
	if v == nil || !on {
		return nil
	}
	if !a.lockAllowances(ctx) {
		return ctx.Err()
	}
	defer a.unlockAllowances()
	ids := make([]protocol.CampaignID, 0, len(v.limited))
	for id := range v.limited {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := a.Now().UnixMicro()
	var first error
	for _, id := range ids {
		al, ok, err := a.db.Allowance(ctx, id)
		if err != nil {
			return err
		}
		if ok && !al.Low(a.LowWater, now) {
			continue
		}
		g, err := link.RequestAllowance(ctx, id)
		if err != nil {
			if c := protocol.ErrorCode(err); c == protocol.CodeBudgetExhausted || c == protocol.CodeCampaignStopped || c == protocol.CodeCampaignUnknown {
				a.Logger.Debug("agent: no allowance", LogKeyCampaign, id, "err", err)
				continue
			}
			a.Logger.Warn("agent: allowance request failed", LogKeyCampaign, id, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if g.Count == 0 && g.Amount == 0 {
			continue
		}
		if _, err := a.db.Grant(ctx, g); err != nil {
			return err
		}
	}
	return first
}

// kickRefresh runs RefreshAllowances in the background, once at a time:
// never in the POS request path.
func (a *Agent) kickRefresh() {
	if _, on := a.online(); !on || !a.refilling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer a.refilling.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		a.RefreshAllowances(ctx)
	}()
}

// refreshTimeout bounds one background allowance refresh.
const refreshTimeout = 30 * time.Second

// topUp asks the hub for more allowance for every limited campaign that
// ran out, when online. It reports whether the allowance may have changed
// (a grant, or one that a concurrent request applied), so that the caller
// evaluates again.
func (a *Agent) topUp(ctx context.Context, d *decision) bool {
	link, on := a.online()
	if !on {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, a.AllowanceWait)
	defer cancel()
	if !a.lockAllowances(ctx) {
		return false
	}
	defer a.unlockAllowances()
	changed := false
	seen := map[protocol.CampaignID]bool{}
	now := a.Now().UnixMicro()
	for _, res := range d.dec.Results {
		if res.Applied || res.Reason != protocol.CodeBudgetExhausted || !d.v.limited[res.Campaign] || seen[res.Campaign] {
			continue
		}
		seen[res.Campaign] = true
		// A background refresh may have filled it while this request
		// waited its turn.
		if al, ok, err := a.db.Allowance(ctx, res.Campaign); err == nil && ok && (al.Count != 0 && al.Amount != 0) &&
			(al.Expires == 0 || now < al.Expires) && al.Grant > d.grants[res.Campaign] {
			changed = true
			continue
		}
		al, err := link.RequestAllowance(ctx, res.Campaign)
		if err != nil {
			a.Logger.Warn("agent: allowance request failed", LogKeyCampaign, res.Campaign, "err", err)
			continue
		}
		if al.Count == 0 && al.Amount == 0 {
			continue
		}
		if ok, err := a.db.Grant(ctx, al); err == nil && ok {
			changed = true
		}
	}
	return changed
}

// lockAllowances takes the agent's one turn at asking the hub for
// allowance (background refresh and POS top-up alike), so that a top-up
// never races a refresh whose grant the hub has counted but the agent not
// yet stored. It gives up when ctx ends.
func (a *Agent) lockAllowances(ctx context.Context) bool {
	select {
	case a.allowTurn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *Agent) unlockAllowances() { <-a.allowTurn }

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
	if rc, err := a.earnedByRedeem(ctx, r.TxnID); err != nil || rc != nil {
		return rc, err
	}
	if err := a.awaitWatermark(ctx); err != nil {
		return nil, err
	}
	b := Basket{Order: r.Order, Customer: r.Customer}
	d, err := a.evaluate(ctx, b, false)
	if err != nil {
		return nil, err
	}
	if !d.offline {
		// Points of a period-capped rule depend on the customer's earnings
		// elsewhere (decide.HubEarnCap): online first, held as a redeem's.
		if d, err = a.onlineFirst(ctx, b, d, r.TxnID, true); err != nil {
			return nil, err
		}
	}
	req := agentdb.Request{Op: agentdb.OpEarn, TxnID: r.TxnID, Hash: hash, Envelope: d.v.env}
	req.Facts = a.earnFacts(d, r.TxnID, r.Order)
	if len(req.Facts) == 0 {
		return nil, protocol.NewError(protocol.CodeNoEffect)
	}
	return a.commit(ctx, req, func(rc *Receipt) { rc.Offline, rc.Points = d.offline, d.dec.PointsEarned })
}

// earnedByRedeem answers an earn for a sale that went through redeem. A
// redeem with a customer already recorded the sale's points (on the order
// after discounts, as its quote said): the earn replays those and records
// nothing. A redeem without a customer earned nothing, and an earn now
// would count whatever order it is sent, not the discounted one: refused
// with conflict (send the customer with the redeem). Nil when no redeem
// used txn.
func (a *Agent) earnedByRedeem(ctx context.Context, txn string) (*Receipt, error) {
	facts, err := a.db.Facts(ctx, agentdb.OpRedeem, txn)
	if err != nil || len(facts) == 0 {
		return nil, err
	}
	rc := &Receipt{TxnID: txn, Op: string(agentdb.OpEarn), Replayed: true}
	for _, f := range facts {
		r := f.Redemption
		if r.Kind != protocol.KindEarn {
			continue
		}
		rc.Offline = r.Offline
		rc.Points += r.Points
		rc.Facts = append(rc.Facts, Fact{ID: r.ID, Kind: r.Kind.String(), Campaign: r.Campaign, Points: r.Points, HLC: r.HLC})
	}
	if len(rc.Facts) == 0 {
		return nil, protocol.Errorf(protocol.CodeConflict, "This sale was redeemed without a customer; points are given with the redeem.")
	}
	return rc, nil
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
		rd.ID, rd.Kind, rd.Ref, rd.Offline, rd.Sale = protocol.RedemptionID{Agent: a.ID}, protocol.KindRollback, &ref, !on, nil
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
	// Link is the connection to the hub part by part (MQTT, HTTP,
	// snapshot); Online is all three up. Absent without a sync client.
	Link *LinkHealth `json:"link,omitempty"`
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
	if h, ok := a.linkHealth(); ok {
		s.Link = &h
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
	case a.RequireWatermark && st.AckedAt.IsZero():
		// A snapshot, but the hub's watermark not heard yet: redeem and
		// earn refuse with never_synced until it is (awaitWatermark).
		s.NeverSynced = true
		s.Store = v.snap.Store.ID
		s.Message = "This till has not finished its first sync with the hub."
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
		case s.Link != nil && s.Link.MQTT.Up && !s.Link.HTTP.Up:
			s.Message = "Offline (the hub's API cannot be reached): rewards are checked on this till within its offline limits."
		case s.Link != nil && s.Link.MQTT.Up && s.Link.HTTP.Up && !s.Link.Snapshot.Fresh:
			s.Message = "Offline (the rules are not current): rewards are checked on this till within its offline limits."
		default:
			s.Message = "Offline: rewards are checked on this till within its offline limits."
		}
	}
	return s, nil
}
