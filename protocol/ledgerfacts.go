package protocol

import "time"

// What the hub's catalog tells its ledger, and the ledger tells the
// catalog's snapshots. The two stores (store/catalog, store/ledger) share
// these types through here rather than importing each other; the hub wires
// one to the other (hub.Open).

// CampaignFacts are what the ledger needs to know of a campaign to check
// limits and detect conflicts. Zero limits mean "no limit".
type CampaignFacts struct {
	MaxCount      int64     // redemptions, 0 = unlimited
	MaxDiscount   int64     // total discount, minor units, 0 = unlimited
	MaxOrderValue int64     // total order value, minor units, 0 = unlimited
	PerCustomer   int64     // redemptions per customer, 0 = unlimited
	Currency      Currency  // the currency of the amount limits
	StoppedAt     time.Time // kill switch time; zero while running
	// Stops are the intervals the campaign was stopped in before, oldest
	// first (a draft's counts from its creation), so that an offline
	// redemption from a stopped window is flagged even after a restart
	// cleared StoppedAt. An interval's To is zero while it is open.
	Stops []StopInterval
	// Referral is the campaign's referral program (referrals.go); nil
	// for any other campaign.
	Referral *Referral
}

// StopInterval is one period a campaign was stopped: [From, To).
type StopInterval struct{ From, To time.Time }

// Limited reports whether the campaign has a budget that allowances escrow.
func (f CampaignFacts) Limited() bool { return f.MaxCount > 0 || f.MaxDiscount > 0 }

// CodeFacts are what the ledger needs to know of a plain code, token serial
// or gift card.
type CodeFacts struct {
	MaxUses        int64 // 1 for a single-use code, 0 = unlimited
	GiftCard       bool
	InitialBalance int64 // gift cards: the value loaded, minor units
	// Referrer owns a referral code (referrals.go); empty otherwise.
	Referrer CustomerID
}

// CodeState is what the ledger knows of one code, for the agents'
// snapshots: tills that see a code's uses and a gift card's spending made
// elsewhere refuse a reuse or an overdraw at once instead of flagging it as a
// conflict after the next sync.
type CodeState struct {
	Used  int64 // redemptions of the code, net of rollbacks
	Spent int64 // gift cards: the amount spent, net of rollbacks
	// Loaded is what top-ups put on a gift card on top of its catalog
	// balance (giftcards.go): a snapshot lists the card's balance as
	// both.
	Loaded int64
}
