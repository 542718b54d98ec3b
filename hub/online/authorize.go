package online

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
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
// of the same (agent, txn) replaces its holds: idempotent. Holds are never
// recorded in the ledger, only counted by later decisions (of tills and
// online channels alike), so the till's fact, applied once by (agent,
// seq), is the only record: nothing is counted twice.
//
// Reason codes: those of Validate (a customer the hub does not know is
// taken as the till presents it, with no points).
func (s *Service) Authorize(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, st snapshot.Store, in decide.AuthorizeRequest) (decide.AuthorizeResponse, error) {
	if in.Hold {
		if err := protocol.ValidateID("txn_id", in.TxnID); err != nil || in.TxnID == "" {
			return decide.AuthorizeResponse{}, protocol.FieldError("txn_id", "a hold needs the till's txn_id")
		}
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
	f := &Facts{cat: s.cat, led: s.led, tenant: tenant, comp: comp, holds: s.holds, owner: owner, agent: string(agent), now: s.Now(), lenient: true}
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
		var hs []hold
		exp := s.Now().Add(s.HoldTTL)
		for _, e := range out.Effects() {
			r := e.Redemption
			if r.Kind != protocol.KindRedeem && (r.Kind != protocol.KindEarn || r.Cap == nil) {
				continue
			}
			if it := e.Item; it != nil && (it.Single || it.Kind == rules.RedeemGiftCard) {
				base := f.ledgerUse[it.Code]
				hs = append(hs, hold{key: holdKey{tenant, 'c', string(it.Code), ""}, owner: owner, uses: 1, spend: r.Spend,
					baseUses: base.Uses, baseSpent: base.Spent, expires: exp})
			}
			if r.Cap != nil && out.Customer != nil && out.Customer.ID != "" {
				// Points of a capped rule, or a redemption counted per
				// customer and period.
				k := protocol.PeriodKey{Campaign: r.Campaign, Rule: r.Cap.Rule, Period: r.Cap.Period, Start: r.Cap.Start}
				n := r.Points
				if r.Kind == protocol.KindRedeem {
					n = 1
				}
				hs = append(hs, hold{key: periodHold(tenant, out.Customer.ID, k), owner: owner, uses: n, baseUses: f.ledgerEarned[k], expires: exp})
				if r.Kind == protocol.KindEarn {
					continue
				}
			}
			if c, ok := comp.Rules.Campaign(r.Campaign); ok && c.Limits.PerCustomer > 0 && out.Customer != nil && out.Customer.ID != "" {
				k := holdKey{tenant, 'u', string(out.Customer.ID), string(r.Campaign)}
				hs = append(hs, hold{key: k, owner: owner, uses: 1, baseUses: f.ledgerCustomer[r.Campaign], expires: exp})
			}
		}
		s.holds.replace(owner, tenant, hs)
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

type holdKey struct {
	tenant protocol.TenantID
	kind   byte // 'c' a code's uses and spending, 'u' a customer's uses of a campaign
	a, b   string
}

// hold is one use held for an online-first till decision. It lapses when
// the ledger's figure has grown past its base by what it holds (the
// till's fact arrived), or at expires.
type hold struct {
	key       holdKey
	owner     string // agent/txn
	uses      int64
	spend     int64
	baseUses  int64
	baseSpent int64
	expires   time.Time
}

// holdBook keeps the holds in memory: a hub restart forgets them, and
// what they guarded falls back to the conflicts of reconciliation, as for
// offline tills.
type holdBook struct {
	mu        sync.Mutex
	byKey     map[holdKey][]hold
	byOwner   map[string][]holdKey
	nextSweep time.Time
}

// sweepEvery is how often replace drops expired holds that no decision
// read since (a till that never synced its fact, a code never asked
// again), so that the book stays bounded by the holds of the last TTL.
const sweepEvery = time.Minute

func newHoldBook() *holdBook {
	return &holdBook{byKey: map[holdKey][]hold{}, byOwner: map[string][]holdKey{}}
}

// replace drops owner's holds and adds hs.
func (b *holdBook) replace(owner string, _ protocol.TenantID, hs []hold) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(hs) > 0 {
		b.sweep(hs[0].expires)
	}
	for _, k := range b.byOwner[owner] {
		l := b.byKey[k][:0]
		for _, h := range b.byKey[k] {
			if h.owner != owner {
				l = append(l, h)
			}
		}
		if len(l) == 0 {
			delete(b.byKey, k)
		} else {
			b.byKey[k] = l
		}
	}
	delete(b.byOwner, owner)
	for _, h := range hs {
		b.byKey[h.key] = append(b.byKey[h.key], h)
		b.byOwner[owner] = append(b.byOwner[owner], h.key)
	}
}

// sweep drops the holds expired at now, at most once per sweepEvery. now
// is a new hold's expiry: the sweep runs on the hold clock, not the wall's.
func (b *holdBook) sweep(now time.Time) {
	if now.Before(b.nextSweep) {
		return
	}
	b.nextSweep = now.Add(sweepEvery)
	for k, l := range b.byKey {
		for _, h := range l {
			if now.After(h.expires.Add(DefaultHoldTTL)) {
				b.drop(k, h.owner)
			}
		}
	}
}

// drop removes owner's hold on k from both indexes.
func (b *holdBook) drop(k holdKey, owner string) {
	l := b.byKey[k][:0]
	for _, h := range b.byKey[k] {
		if h.owner != owner {
			l = append(l, h)
		}
	}
	if len(l) == 0 {
		delete(b.byKey, k)
	} else {
		b.byKey[k] = l
	}
	ks := b.byOwner[owner][:0]
	for _, x := range b.byOwner[owner] {
		if x != k {
			ks = append(ks, x)
		}
	}
	if len(ks) == 0 {
		delete(b.byOwner, owner)
	} else {
		b.byOwner[owner] = ks
	}
}

// ownedBy sums the live holds on k of owners named prefix (one till's
// "agent/" holds) other than owner: what that till's own facts count once
// it committed them, so that its figure from the hub leaves them out.
func (b *holdBook) ownedBy(k holdKey, prefix, owner string, now time.Time) (hu, hs int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.byKey[k] {
		if h.owner != owner && strings.HasPrefix(h.owner, prefix) && !now.After(h.expires) {
			hu += h.uses
			hs += h.spend
		}
	}
	return hu, hs
}

// held sums the live holds on k of owners other than owner, given the
// ledger's figures now, and drops the ones that lapsed.
func (b *holdBook) held(k holdKey, owner string, uses, spent int64, now time.Time) (hu, hs int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.byKey[k]
	if len(l) == 0 {
		return 0, 0
	}
	var lapsed []string
	for _, h := range l {
		reflected := uses >= h.baseUses+h.uses && (h.spend == 0 || spent >= h.baseSpent+h.spend)
		if reflected || now.After(h.expires) {
			lapsed = append(lapsed, h.owner)
			continue
		}
		if h.owner != owner {
			hu += h.uses
			hs += h.spend
		}
	}
	for _, o := range lapsed {
		b.drop(k, o)
	}
	return hu, hs
}
