package ledger

import (
	"strconv"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// HoldKind says what a hold counts.
type HoldKind byte

// Hold kinds.
const (
	// HoldCode holds a code's uses and a gift card's spending (A: the code).
	HoldCode HoldKind = 'c'
	// HoldCustomer holds a customer's uses of a campaign (A: the
	// customer, B: the campaign).
	HoldCustomer HoldKind = 'u'
	// HoldPeriod holds a customer's total in one capped period: points
	// earned, or redemptions counted per customer and period (A: the
	// customer, B: PeriodHoldB of the period key).
	HoldPeriod HoldKind = 'e'
)

// HoldKey is what a hold is on, within a tenant.
type HoldKey struct {
	Kind HoldKind
	A, B string
}

// Hold is one use (and spend) held for an online-first till's decision
// (hub/online Authorize) until the till's fact reaches the ledger (the
// ledger's figure passes BaseUses+Uses and BaseSpent+Spend) or Expires.
// A hold is never a record of the ledger: the till's fact is.
type Hold struct {
	HoldKey
	Owner               string // agent/txn
	Uses, Spend         int64
	BaseUses, BaseSpent int64 // the ledger's figures when it was taken
	Expires             time.Time
}

// Reflected reports whether the ledger's figures (uses, spent) show the
// fact the hold was taken for.
func (h Hold) Reflected(uses, spent int64) bool {
	return uses >= h.BaseUses+h.Uses && (h.Spend == 0 || spent >= h.BaseSpent+h.Spend)
}

// PeriodHoldB is the B of a HoldPeriod hold on k.
func PeriodHoldB(k protocol.PeriodKey) string {
	return string(k.Campaign) + "\x00" + k.Rule + "\x00" + k.Period + "\x00" + strconv.FormatInt(k.Start, 10)
}
