package online

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
)

// Facts is what the hub supplies to the decision pipeline: its catalog's
// codes, keys, revocations and customers, and its ledger's uses, balances,
// per-customer counts, points and remaining budgets.
type Facts struct {
	cat    Catalog
	led    Ledger
	tenant protocol.TenantID
	comp   Compiled
	// holds are the online-first tills' holds, counted on top of the
	// ledger's figures except owner's own.
	holds   bool
	owner   string
	agent   string // the till asking online first ("" for other channels)
	now     time.Time
	lenient bool // a customer the hub does not know is taken as presented
	// ledgerUse and ledgerCustomer are the ledger's figures without holds.
	ledgerUse      map[protocol.CodeID]decide.Use
	ledgerCustomer map[protocol.CampaignID]int64
	// mine are the asking till's holds of its other transactions, per
	// code: counted in its decision, left out of the figure it is sent.
	mine map[protocol.CodeID]decide.Use
	// fig are the figures prefetch read, of figCustomer; nil: none.
	fig         *ledger.Figures
	figCustomer protocol.CustomerID
	// ledgerEarned and mineEarned are the ledger's period totals and the
	// asking till's holds of its other transactions, per period key.
	ledgerEarned map[protocol.PeriodKey]int64
	mineEarned   map[protocol.PeriodKey]int64
	// segs computes the customer's segments from behaviour (nil: none).
	segs Segmenter
}

var _ decide.Source = (*Facts)(nil)

// Code implements decide.Source.
func (f *Facts) Code(ctx context.Context, key protocol.CodeID) (decide.Code, bool, error) {
	cd, err := f.cat.Code(ctx, f.tenant, string(key))
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return decide.Code{}, false, nil
	}
	if err != nil {
		return decide.Code{}, false, err
	}
	c := decide.Code{Key: cd.Key, Campaign: cd.Campaign, MaxUses: cd.Uses, Balance: cd.Balance, Stores: cd.Stores, Group: cd.Group,
		Revoked: !cd.RevokedAt.IsZero()}
	if cp, ok := f.comp.Camps[cd.Campaign]; ok && cp.Rules.Reward.Kind == rules.RewardGiftCard {
		c.GiftCard = true
		// Top-ups raise the balance loaded (the snapshot's Balance
		// likewise); Spent stays what was spent.
		loaded, err := f.led.GiftCardLoaded(ctx, f.tenant, cd.Key)
		if err != nil {
			return decide.Code{}, false, err
		}
		c.Balance += loaded
	}
	return c, true, nil
}

// Keys implements decide.Source.
func (f *Facts) Keys(ctx context.Context) (token.KeySet, error) { return f.cat.KeySet(ctx, f.tenant) }

// TokenRevoked implements decide.Source.
func (f *Facts) TokenRevoked(ctx context.Context, serial protocol.CodeID) (bool, error) {
	t, err := f.cat.Token(ctx, f.tenant, serial)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !t.RevokedAt.IsZero(), nil
}

// Uses implements decide.Source: the ledger's figures.
func (f *Facts) Uses(ctx context.Context, key protocol.CodeID, c decide.Code) (decide.Use, error) {
	var u decide.Use
	var err error
	uses, ok := int64(0), false
	if f.fig != nil {
		uses, ok = f.fig.Uses[key]
	}
	if ok {
		u.Uses = uses
	} else if u.Uses, err = f.led.CodeUses(ctx, f.tenant, key); err != nil {
		return u, err
	}
	if c.GiftCard {
		spent, ok := int64(0), false
		if f.fig != nil {
			spent, ok = f.fig.Spent[key]
		}
		if ok {
			u.Spent = spent
		} else if u.Spent, err = f.led.GiftCardSpent(ctx, f.tenant, key); err != nil {
			return u, err
		}
	}
	if f.ledgerUse == nil {
		f.ledgerUse = map[protocol.CodeID]decide.Use{}
	}
	f.ledgerUse[key] = u
	// Holds are taken only on single-use codes, tokens and gift cards
	// (Authorize): a multi-use code costs no read of them.
	if f.holds && (c.Key == "" || c.MaxUses == 1 || c.GiftCard) {
		held, mine, err := f.held(ctx, ledger.HoldKey{Kind: ledger.HoldCode, A: string(key)}, u.Uses, u.Spent)
		if err != nil {
			return u, err
		}
		u.Uses, u.Spent = u.Uses+held.Uses, u.Spent+held.Spent
		if f.agent != "" {
			if f.mine == nil {
				f.mine = map[protocol.CodeID]decide.Use{}
			}
			f.mine[key] = mine
		}
	}
	return u, nil
}

// held sums the live holds on k of owners other than the asking one,
// given the ledger's figures now (uses, spent), and of them mine, the
// asking till's holds of its other transactions: what its own facts
// count once it committed them, so that its figure from the hub leaves
// them out. Holds whose fact the figures show are dropped.
func (f *Facts) held(ctx context.Context, k ledger.HoldKey, uses, spent int64) (held, mine decide.Use, err error) {
	hs, err := f.led.Holds(ctx, f.tenant, k, f.clock())
	if err != nil || len(hs) == 0 {
		return held, mine, err
	}
	var lapsed []ledger.Hold
	for _, h := range hs {
		if h.Reflected(uses, spent) {
			lapsed = append(lapsed, h)
			continue
		}
		if h.Owner == f.owner {
			continue
		}
		held.Uses += h.Uses
		held.Spent += h.Spend
		if f.agent != "" && strings.HasPrefix(h.Owner, f.agent+"/") {
			mine.Uses += h.Uses
			mine.Spent += h.Spend
		}
	}
	if len(lapsed) > 0 {
		if err := f.led.DropHolds(ctx, f.tenant, lapsed); err != nil && !ledger.IsBusy(err) {
			return held, mine, err
		}
	}
	return held, mine, nil
}

func (f *Facts) clock() time.Time {
	if f.now.IsZero() {
		f.now = time.Now()
	}
	return f.now
}

// Customer implements decide.Source: the catalog's profile and the
// ledger's points.
func (f *Facts) Customer(ctx context.Context, c protocol.Customer) (protocol.Customer, int64, error) {
	cu, err := f.cat.Customer(ctx, f.tenant, c.ID)
	if err != nil {
		if protocol.ErrorCode(err) == protocol.CodeNotFound && f.lenient {
			return c, 0, nil
		}
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return c, 0, &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("customer %q not found", c.ID), Field: "customer"}
		}
		return c, 0, err
	}
	p := cu.Protocol()
	if f.segs != nil {
		if p.Segments, err = f.segs.Of(ctx, f.tenant, c.ID, cu.Attributes, f.clock()); err != nil {
			return c, 0, err
		}
	}
	if f.fig != nil && f.figCustomer == c.ID {
		return p, f.fig.Points, nil
	}
	pts, err := f.led.Points(ctx, f.tenant, c.ID)
	return p, pts, err
}

// Segmenter computes a customer's segments from behaviour at now
// (hub/segments.Service.Of).
type Segmenter interface {
	Of(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, attrs map[string]string, now time.Time) ([]string, error)
}

// CustomerUses implements decide.Source.
func (f *Facts) CustomerUses(ctx context.Context, customer protocol.CustomerID, campaign protocol.CampaignID) (int64, error) {
	n, ok := int64(0), false
	if f.fig != nil && f.figCustomer == customer {
		n, ok = f.fig.Counts[campaign]
	}
	if !ok {
		var err error
		if n, err = f.led.CustomerCount(ctx, f.tenant, customer, campaign); err != nil {
			return 0, err
		}
	}
	if f.ledgerCustomer == nil {
		f.ledgerCustomer = map[protocol.CampaignID]int64{}
	}
	f.ledgerCustomer[campaign] = n
	if f.holds {
		held, _, err := f.held(ctx, ledger.HoldKey{Kind: ledger.HoldCustomer, A: string(customer), B: string(campaign)}, n, 0)
		if err != nil {
			return 0, err
		}
		n += held.Uses
	}
	return n, nil
}

// Budget implements decide.Source: what is left of the campaign's budgets
// after every redemption and every allowance held by a till.
func (f *Facts) Budget(ctx context.Context, campaign protocol.CampaignID) (rules.Budget, error) {
	b, ok := ledger.CampaignBalance{}, false
	if f.fig != nil {
		b, ok = f.fig.Campaigns[campaign]
	}
	if !ok {
		var err error
		if b, err = f.led.Campaign(ctx, f.tenant, campaign); err != nil {
			return rules.Budget{}, err
		}
	}
	bud := rules.Budget{Count: -1, Amount: -1}
	cp, ok := f.comp.Rules.Campaign(campaign)
	if !ok {
		return bud, nil
	}
	l := cp.Limits
	if l.MaxRedemptions > 0 {
		bud.Count = max(l.MaxRedemptions-b.Count-b.ReservedCount, 0)
	}
	if l.MaxDiscount > 0 {
		bud.Amount = max(l.MaxDiscount-b.Discount-b.ReservedAmount, 0)
	}
	return bud, nil
}

// Earned implements decide.Source: the ledger's period totals plus the
// points online-first tills hold (decided, fact not arrived yet).
func (f *Facts) Earned(ctx context.Context, customer protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error) {
	got, err := f.led.PeriodEarned(ctx, f.tenant, customer, keys)
	if err != nil {
		return nil, err
	}
	if f.ledgerEarned == nil {
		f.ledgerEarned = map[protocol.PeriodKey]int64{}
	}
	for i, k := range keys {
		f.ledgerEarned[k] = got[i]
		if !f.holds {
			continue
		}
		held, mine, err := f.held(ctx, ledger.HoldKey{Kind: ledger.HoldPeriod, A: string(customer), B: ledger.PeriodHoldB(k)}, got[i], 0)
		if err != nil {
			return nil, err
		}
		if f.agent != "" {
			if f.mineEarned == nil {
				f.mineEarned = map[protocol.PeriodKey]int64{}
			}
			f.mineEarned[k] = mine.Uses
		}
		got[i] += held.Uses
	}
	return got, nil
}
