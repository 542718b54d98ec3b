package agent

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/agentdb"
)

// tillFacts is what the till supplies to the decision pipeline
// (protocol/decide), one per decision: its snapshot's codes, keys and
// revocations, its own facts of uses and spending laid over the hub's
// last figures (store/agentdb), and its allowances. What only the hub
// knows (other tills' uses, a customer's redemptions elsewhere, their
// points) it answers as unknown: zero. A till online asks the hub for
// those (online first, onlinefirst.go).
type tillFacts struct {
	a      *Agent
	v      *view
	now    time.Time
	grants map[protocol.CampaignID]uint64 // allowance grant numbers used
	// hub is the hub's answer when the till asked online first: its
	// figures stand in for what the till cannot know.
	hub *decide.AuthorizeResponse
	// stmt is the basket's points statement (statement.go).
	stmt *stmt
}

var _ decide.Source = (*tillFacts)(nil)

// Code implements decide.Source: the snapshot lists codes by their keyed
// hash (snapshot.LookupID).
func (f *tillFacts) Code(ctx context.Context, key protocol.CodeID) (decide.Code, bool, error) {
	id := f.v.snap.LookupID(key)
	if f.v.revCode[id] {
		return decide.Code{Key: key, Revoked: true}, true, nil
	}
	c, ok := f.v.code(id)
	if !ok {
		// A gift card this till sold, not in the snapshot yet
		// (giftcards.go).
		dc, ok, err := f.ownCard(ctx, key)
		if err == nil && ok {
			err = f.ownTopUps(ctx, &dc)
		}
		if err == nil && !ok {
			// One the hub knows, newer than the snapshot (fresh.go).
			dc, ok = f.hubCode(key)
		}
		return dc, ok, err
	}
	dc := decide.Code{Key: key, Campaign: c.Campaign, MaxUses: c.Uses, Stores: c.Stores, Group: c.Group}
	if c.Balance != nil {
		dc.GiftCard, dc.Balance = true, c.Balance.Amount
		if err := f.ownTopUps(ctx, &dc); err != nil { // giftcards.go
			return decide.Code{}, false, err
		}
	}
	return dc, true, nil
}

// Keys implements decide.Source.
func (f *tillFacts) Keys(context.Context) (token.KeySet, error) { return f.v.keys, nil }

// TokenRevoked implements decide.Source.
func (f *tillFacts) TokenRevoked(_ context.Context, serial protocol.CodeID) (bool, error) {
	return f.v.revToken[serial], nil
}

// Uses implements decide.Source: the hub's freshest figure the till holds
// (the snapshot's, or a later online-first answer's, hubfigure.go) plus
// this till's own uses and spending it does not count yet
// (agentdb.CodeFigure: exact, never a max of the two). A token serial has
// no figure in the snapshot: every own use counts. Only a hub before the
// authorize answer's Reflected leaves the till a bound: the larger of its
// figure and the hub's.
func (f *tillFacts) Uses(ctx context.Context, key protocol.CodeID, c decide.Code) (decide.Use, error) {
	fig, err := f.a.db.CodeFigure(ctx, key, f.a.hubFigure(f.v, key, c.Key == ""))
	if err != nil {
		return decide.Use{}, err
	}
	if h, ok := f.hubKnown(key); ok && f.hub.Reflected == nil {
		fig.Uses, fig.Spent = max(fig.Uses, h.Uses), max(fig.Spent, h.Spent)
	}
	return decide.Use{Uses: fig.Uses, Spent: fig.Spent}, nil
}

// Customer implements decide.Source: the POS's profile as presented, with
// the segments the snapshot lists for a known customer and the tier the
// hub's tier programme set when the snapshot lists the customer
// (Snapshot.Tiers: it wins over the POS's); its points are the hub's to
// know (online first), or, offline, what the customer's points statement
// still allows here (statement.go).
func (f *tillFacts) Customer(ctx context.Context, c protocol.Customer) (protocol.Customer, int64, error) {
	c = f.v.withSegments(c)
	if t, ok := f.v.tiers[c.ID]; ok && c.ID != "" {
		c.Tier = t
	}
	if f.hub != nil {
		return c, f.hub.Points, nil
	}
	if st := f.stmt; st != nil && st.err == nil && st.s.Customer == c.ID {
		pts, err := f.a.statementPoints(ctx, st)
		return c, pts, err
	}
	return c, 0, nil
}

// CustomerUses implements decide.Source: unknown at the till (zero).
func (f *tillFacts) CustomerUses(_ context.Context, _ protocol.CustomerID, campaign protocol.CampaignID) (int64, error) {
	if f.hub != nil {
		return f.hub.CustomerUses[campaign], nil
	}
	return 0, nil
}

// Budget implements decide.Source: the allowance left, or nothing when the
// till holds none (or it expired).
func (f *tillFacts) Budget(ctx context.Context, id protocol.CampaignID) (rules.Budget, error) {
	al, ok, err := f.a.db.Allowance(ctx, id)
	if err != nil {
		return rules.Budget{}, err
	}
	if f.grants == nil {
		f.grants = map[protocol.CampaignID]uint64{}
	}
	f.grants[id] = al.Grant
	if ok && (al.Expires == 0 || f.now.UnixMicro() < al.Expires) {
		return rules.Budget{Count: al.Count, Amount: al.Amount}, nil
	}
	return rules.Budget{}, nil
}

// known is the hub's figures of a plain code's uses and spending at the
// snapshot (0 for a token serial or an unknown code).
func (v *view) known(key protocol.CodeID) (used, spent int64) {
	c, ok := v.code(v.snap.LookupID(key))
	if !ok {
		return 0, 0
	}
	return c.Used, c.Spent
}

// Earned implements decide.Source: what the customer earned in each
// capped rule's period. Online first, the hub's figure (every channel's
// and till's, with holds) plus this till's own earns it does not count
// yet (outside the answer's Reflected); offline, this till's own earns
// alone. So offline a customer earns at most one cap per period at each
// till that cannot reach the hub, and the hub flags what went past the
// cap on ingest (earn_cap_exceeded).
func (f *tillFacts) Earned(ctx context.Context, customer protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		var hub int64
		found := false
		if f.hub != nil {
			for _, pf := range f.hub.Earned {
				if pf.PeriodKey == k {
					hub, found = pf.Points, true
				}
			}
		}
		var refl *agentdb.Reflected
		if found && f.hub.Reflected != nil {
			refl = &agentdb.Reflected{Watermark: f.hub.Reflected.Watermark, Beyond: f.hub.Reflected.Beyond}
		}
		own, err := f.a.db.PeriodEarned(ctx, customer, k, refl)
		if err != nil {
			return nil, err
		}
		if found && refl == nil {
			out[i] = max(hub, own) // a hub that sends no Reflected
		} else {
			out[i] = hub + own
		}
	}
	return out, nil
}
