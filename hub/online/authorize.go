package online

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// DefaultHoldTTL is how long the hub holds what an online-first till
// decision uses when the till's fact does not reach the ledger (the till
// died before it committed, or went offline before it synced).
const DefaultHoldTTL = 2 * time.Minute

// Authorize answers a till that asks online first (decide.PathAuthorize):
// the hub runs the pipeline with the till's store and its own figures,
// and with in.Hold holds the single-use uses, gift card spends and
// per-customer uses the decision applies, for the till's (agent, txn)
// until its fact reaches the ledger or HoldTTL passes. A repeated request
// of the same (agent, txn) replaces its holds: idempotent. Holds are kept
// in the store (Holds), so a restarted hub and every hub on the same
// database count them, but never as records of the ledger: they are only
// counted by later decisions (of tills and online channels alike), so the
// till's fact, applied once by (agent, seq), is the only record: nothing
// is counted twice.
//
// Reason codes: those of Validate (a customer the hub does not know is
// taken as the till presents it, with no points); invalid_input (field
// "unknown", fresh.go).
func (s *Service) Authorize(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, st snapshot.Store, in decide.AuthorizeRequest) (decide.AuthorizeResponse, error) {
	if in.Hold {
		if err := protocol.ValidateID("txn_id", in.TxnID); err != nil || in.TxnID == "" {
			return decide.AuthorizeResponse{}, protocol.FieldError("txn_id", "a hold needs the till's txn_id")
		}
	}
	if err := checkUnknown(in); err != nil { // fresh.go
		return decide.AuthorizeResponse{}, err
	}
	where, err := s.store(Store{ID: st.ID, Region: st.Region, TimeZone: st.TimeZone})
	if err != nil {
		return decide.AuthorizeResponse{}, err
	}
	comp, err := s.Compiled(ctx, tenant)
	if err != nil {
		return decide.AuthorizeResponse{}, err
	}
	owner := string(agent) + "/" + in.TxnID
	// Which of this till's facts the ledger's figures count, read before
	// them: a fact applied in between is counted by the till a second
	// time, never missed (ledger.Reflected).
	var refl *snapshot.Reflected
	rl, _ := s.led.(ReflectedLedger)
	if rl != nil {
		refl = &snapshot.Reflected{}
		if _, refl.Watermark, refl.Beyond, err = rl.Reflected(ctx, tenant, agent); err != nil {
			return decide.AuthorizeResponse{}, err
		}
	}
	f := &Facts{cat: s.cat, led: s.led, tenant: tenant, comp: comp, holds: s.led != nil, segs: s.Segments, owner: owner, agent: string(agent), now: s.Now(), lenient: true}
	req := decide.Request{Tenant: tenant, Where: decide.Where{Store: where, Group: st.Group}, Order: in.Order, Customer: in.Customer,
		Now: s.Now().UTC().Truncate(time.Millisecond)}
	for _, p := range in.Redeemables {
		req.Presented = append(req.Presented, decide.Presented{Code: p.Code, Campaign: p.Campaign, Amount: p.Amount})
	}
	out, err := decide.Decide(ctx, f, comp.Rules, req)
	if err != nil {
		return decide.AuthorizeResponse{}, err
	}
	resp := decide.AuthorizeResponse{Ref: owner, Decision: out.Decision, CustomerUses: out.Request.CustomerUses, Points: out.Request.Points}
	if resp.Codes, err = unknownCodes(ctx, f, in, out); err != nil { // fresh.go: codes newer than the till's snapshot
		return decide.AuthorizeResponse{}, err
	}
	for _, it := range out.Items {
		k := decide.Known{Uses: it.Known.Uses, Spent: it.Known.Spent}
		if refl != nil {
			// The till adds its own facts beyond Reflected: its other
			// transactions' holds are those facts.
			m := f.mine[it.Code]
			k.Uses, k.Spent = max(k.Uses-m.Uses, 0), max(k.Spent-m.Spent, 0)
		}
		resp.Known = append(resp.Known, k)
	}
	for _, pf := range out.Periods() {
		// The ledger's figure plus other tills' holds, less this till's
		// other holds (its own facts, which it adds itself).
		pf.Points = max(pf.Points-f.mineEarned[pf.PeriodKey], 0)
		resp.Earned = append(resp.Earned, pf)
	}
	if refl != nil {
		// The code-use position read after the figures: a snapshot at or
		// after it counts at least what Known counts of the ledger.
		if resp.Position, err = rl.CodeHead(ctx, tenant); err != nil {
			return decide.AuthorizeResponse{}, err
		}
		resp.Reflected = refl
	}
	if in.Hold && out.Refusal() == nil {
		var hs []ledger.Hold
		now := s.Now()
		exp := now.Add(s.HoldTTL)
		for _, e := range out.Effects() {
			r := e.Redemption
			if r.Kind != protocol.KindRedeem && (r.Kind != protocol.KindEarn || r.Cap == nil) {
				continue
			}
			if it := e.Item; it != nil && (it.Single || it.Kind == rules.RedeemGiftCard) {
				base := f.ledgerUse[it.Code]
				hs = append(hs, ledger.Hold{HoldKey: ledger.HoldKey{Kind: ledger.HoldCode, A: string(it.Code)}, Owner: owner, Uses: 1, Spend: r.Spend,
					BaseUses: base.Uses, BaseSpent: base.Spent, Expires: exp})
			}
			if r.Cap != nil && out.Customer != nil && out.Customer.ID != "" {
				// Points of a capped rule, or a redemption counted per
				// customer and period.
				k := protocol.PeriodKey{Campaign: r.Campaign, Rule: r.Cap.Rule, Period: r.Cap.Period, Start: r.Cap.Start}
				n := r.Points
				if r.Kind == protocol.KindRedeem {
					n = 1
				}
				hs = append(hs, ledger.Hold{HoldKey: ledger.HoldKey{Kind: ledger.HoldPeriod, A: string(out.Customer.ID), B: ledger.PeriodHoldB(k)},
					Owner: owner, Uses: n, BaseUses: f.ledgerEarned[k], Expires: exp})
				if r.Kind == protocol.KindEarn {
					continue
				}
			}
			if c, ok := comp.Rules.Campaign(r.Campaign); ok && c.Limits.PerCustomer > 0 && out.Customer != nil && out.Customer.ID != "" {
				k := ledger.HoldKey{Kind: ledger.HoldCustomer, A: string(out.Customer.ID), B: string(r.Campaign)}
				hs = append(hs, ledger.Hold{HoldKey: k, Owner: owner, Uses: 1, BaseUses: f.ledgerCustomer[r.Campaign], Expires: exp})
			}
		}
		if err := s.led.ReplaceHolds(ctx, tenant, owner, hs, now); err != nil {
			return decide.AuthorizeResponse{}, err
		}
		resp.Held = len(hs) > 0
	}
	return resp, nil
}

// ReflectedLedger is what an exact till figure needs of the ledger
// (ledger.Ledger implements it): which of a till's facts its figures
// count, and the code-use position. Without it the authorize answer
// carries neither, and the till bounds its figure (older hubs alike).
type ReflectedLedger interface {
	Reflected(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (head, watermark uint64, beyond []uint64, err error)
	CodeHead(ctx context.Context, tenant protocol.TenantID) (uint64, error)
}

// Holds is where the service keeps the online-first holds (store/ledger
// keeps them in the ledger database, ledger_holds): a hub restarted after
// a kill still counts them, and so does every hub on the same database.
type Holds interface {
	// ReplaceHolds drops owner's holds and records hs, all owner's, as
	// one unit of work; it may sweep holds long expired at now.
	ReplaceHolds(ctx context.Context, tenant protocol.TenantID, owner string, hs []ledger.Hold, now time.Time) error
	// Holds returns the holds on k not expired at now.
	Holds(ctx context.Context, tenant protocol.TenantID, k ledger.HoldKey, now time.Time) ([]ledger.Hold, error)
	// DropHolds removes holds whose fact reached the ledger, as Holds
	// returned them; one its owner replaced meanwhile stays.
	DropHolds(ctx context.Context, tenant protocol.TenantID, hs []ledger.Hold) error
}
