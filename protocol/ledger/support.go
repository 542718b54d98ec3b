package ledger

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Support tools (issue 12, item 7): a customer's full history for the
// support desk, and manual points adjustments with a reason.

// EntryPointsAdjusted is the journal entry kind of a manual points
// adjustment (support desk): its own kind, never an earn or a burn, so
// that reports and audits tell it apart.
const EntryPointsAdjusted = "points_adjusted"

// Reasons an adjustment may give. They are stored and shown; never rename
// one.
const (
	ReasonLostPoints = "lost_points" // points a sale should have earned and did not reach the ledger
	ReasonGoodwill   = "goodwill"    // a gesture to the customer
	ReasonCorrection = "correction"  // a mistake of the support desk or a till undone
	ReasonMerge      = "merge"       // points moved from a duplicate account
	ReasonFraud      = "fraud"       // points taken back after abuse
	ReasonOther      = "other"       // the note says why
)

// AdjustmentReasons are the reasons an adjustment may give, in the order
// the API documents them.
var AdjustmentReasons = []string{ReasonLostPoints, ReasonGoodwill, ReasonCorrection, ReasonMerge, ReasonFraud, ReasonOther}

// Limits on an adjustment from the outside.
const (
	MaxAdjustPoints    = 10_000_000
	MaxAdjustNote      = 500
	MaxAdjustReference = 128
)

// Adjustment is a manual change of a customer's points. A positive one
// is a lot (expiring at ExpiresAt, or never); a negative one takes points
// from the customer's live lots as a burn does, and never beyond them.
type Adjustment struct {
	Tenant    protocol.TenantID   `json:"-"`
	Customer  protocol.CustomerID `json:"customer"`
	Points    int64               `json:"points"`
	Reason    string              `json:"reason"`
	Note      string              `json:"note,omitempty"`
	Reference string              `json:"reference,omitempty"`
	ExpiresAt time.Time           `json:"expires_at,omitzero"`
	// By is the API key that made it (audit: who).
	By string `json:"by"`
}

// AdjustmentRecord is an adjustment as the ledger recorded it: its
// journal identity (the hub's agent and seq), when, the lot a positive one
// made, and the balance after it.
type AdjustmentRecord struct {
	Adjustment
	Redemption protocol.RedemptionID `json:"redemption"`
	At         time.Time             `json:"at"`
	Lot        int64                 `json:"lot,omitempty"`
	Balance    int64                 `json:"balance"`
}

// AdjustOnce makes an adjustment idempotent under a key, as Once does a
// basket: the answer is recorded in the adjustment's transaction.
type AdjustOnce struct {
	Key     string
	Request []byte
	Answer  func(AdjustmentRecord) (status int, body []byte, err error)
}

// HistoryQuery asks for one page of a customer's activity, newest first:
// the activity below the position (BeforeEntry, BeforeTier) and conflicts
// with an ID below BeforeConflict (0: from the newest), at most Limit of
// each. The activity is one order across the journal and the tier
// changes: a journal entry stands at (its ID, 0), a tier change at (the
// newest journal ID when it was written, its own ID); both 0: the newest.
type HistoryQuery struct {
	BeforeEntry    int64
	BeforeTier     int64
	BeforeConflict int64
	Limit          int
}

// HistoryEntry is one journal entry naming the customer, as the support
// desk sees it: a redemption (online or at a till), an earn or burn of
// points, a rollback, an expiry or an adjustment.
type HistoryEntry struct {
	CustomerEntry
	// Channel is "online" (the hub's own redemption) or "till".
	Channel string `json:"channel"`
	// Agent is the till that made it (the hub for online ones).
	Agent protocol.AgentID `json:"agent"`
	// RolledBackBy names the rollback that voided this entry, if any.
	RolledBackBy *protocol.RedemptionID `json:"rolled_back_by,omitempty"`
	// Lot is the lot a points_expired entry expired.
	Lot int64 `json:"lot,omitempty"`
	// Adjustment holds a points_adjusted entry's reason and author.
	Adjustment *AdjustmentInfo `json:"adjustment,omitempty"`
	// Tier holds a tier_changed entry's change; its ID is the change's
	// own (ledger_tier_history), not a journal ID.
	Tier *TierChangeInfo `json:"tier,omitempty"`
}

// EntryTierChanged is the kind of a history entry that is a change of the
// customer's tier (ledger_tier_history), not a journal entry.
const EntryTierChanged = "tier_changed"

// TierChangeInfo is a tier change in the history: from, to (either ""
// for no tier), why ("upgrade", "downgrade") and the fact that caused an
// upgrade (none for the review's changes).
type TierChangeInfo struct {
	From   string                 `json:"from"`
	To     string                 `json:"to"`
	Reason string                 `json:"reason"`
	Fact   *protocol.RedemptionID `json:"fact,omitempty"`
}

// AdjustmentInfo is what the journal entry of an adjustment does not
// hold itself.
type AdjustmentInfo struct {
	Reason    string    `json:"reason"`
	Note      string    `json:"note,omitempty"`
	Reference string    `json:"reference,omitempty"`
	By        string    `json:"by"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// HistoryPage is one page of a customer's activity.
type HistoryPage struct {
	Entries   []HistoryEntry
	Conflicts []Conflict
	// NextEntry and NextTier are the position of the last entry of the
	// page (HistoryQuery), the following page's start.
	NextEntry, NextTier int64
}
