package ledger

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Reports (issue 13, Deliver 3): what the ledger sums for a tenant's
// reports. The hub's reports service (hub/reports) cuts the range into
// buckets in the tenant's time zone; the ledger sums the journal's facts
// per bucket by the time they happened (their HLC), so that a report over
// all time equals Verify's balances.

// Report groups: what a report's rows are keyed by besides the bucket.
const (
	GroupNone     = ""         // one row per bucket (and currency)
	GroupCampaign = "campaign" // per campaign
	GroupStore    = "store"    // per store
	GroupTill     = "till"     // per till (the agent that recorded the fact)
)

// Bucket is one period of a report, [Start, End), already cut in the
// tenant's time zone.
type Bucket struct {
	Start, End time.Time
}

// ActivityQuery asks for the facts of Buckets (ordered, not overlapping)
// summed per bucket, Group and currency.
type ActivityQuery struct {
	Buckets []Bucket
	Group   string // Group* constant
}

// ActivityRow is one bucket's sums for one group key and currency. Each
// fact counts in the bucket of its own time: a rollback reduces the
// period it happened in, not the period of the redemption it voids (as a
// reversal is booked).
type ActivityRow struct {
	Bucket   int    // index into ActivityQuery.Buckets
	Key      string // campaign, store or till; "" for GroupNone
	Currency protocol.Currency
	// Redemptions is the net count of rewards applied (redemptions less
	// the rollbacks that voided one), Discount and OrderValue their net
	// discount and order totals, in minor units: over all time, a
	// campaign's figures are ledger_campaigns' count, discount and
	// order_value.
	Redemptions int64
	Rollbacks   int64 // rollbacks that voided a redemption
	Discount    int64
	OrderValue  int64
	Offline     int64 // redemptions decided by a till on its own (net)
	// PointsNet is the points movement of the bucket: earned, less
	// spent, expired and rolled back, plus adjustments; over all time it
	// is the sum of the customers' balances.
	PointsNet     int64
	PointsExpired int64 // points that expired (>= 0), part of PointsNet
}

// ConflictRow is the number of conflicts of one kind recorded in a bucket
// (by the hub's clock: a conflict happens when the fact reaches the hub).
type ConflictRow struct {
	Bucket int
	Kind   string
	Count  int64
}

// Balances are a tenant's liabilities at one moment, from the balance
// tables Verify checks.
type Balances struct {
	// GiftCardLiability is what the tenant's gift cards still hold, per
	// currency, in minor units.
	GiftCardLiability map[protocol.Currency]int64
	PointsOutstanding int64 // live points of every customer (debts net)
	PointsExpiring30  int64 // of which expire within 30 days
	PointsExpiring90  int64 // of which expire within 90 days
	// Campaigns are the budget figures per campaign: what was used and
	// what tills hold in escrow (granted, not yet used or returned).
	Campaigns map[protocol.CampaignID]BudgetUse
	// CodesUsed is the number of distinct codes used at least once, per
	// campaign (the redemption rate's numerator).
	CodesUsed map[protocol.CampaignID]int64
}

// BudgetUse is a campaign's budget figures from the ledger.
type BudgetUse struct {
	Count          int64
	Discount       int64
	EscrowedCount  int64
	EscrowedAmount int64
}

// ExportRow is one journal fact of the redemptions export, in the order
// the journal recorded facts of the same time.
type ExportRow struct {
	At         time.Time // the fact's time (its HLC)
	Entry      string    // redeem, rollback, earn, burn, giftcard_*, points_*
	Agent      protocol.AgentID
	Seq        uint64
	Store      protocol.StoreID
	TxnID      string
	Campaign   protocol.CampaignID
	Code       protocol.CodeID
	Customer   protocol.CustomerID
	OrderID    string
	Currency   protocol.Currency
	Discount   int64
	Spend      int64
	Points     int64
	OrderTotal int64
	Offline    bool
	Sign       int64 // the effect on the counts: +1, -1 (a voiding rollback) or 0
	RefAgent   protocol.AgentID
	RefSeq     uint64
	ReceivedAt time.Time // hub clock
}
