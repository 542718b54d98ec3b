package oldrules

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// EarnOn says what an earning rule pays points for.
type EarnOn string

// Earning triggers.
const (
	EarnSpend EarnOn = "spend" // MilliPoints per PerAmount minor units of matching spend (after discounts)
	EarnItem  EarnOn = "item"  // MilliPoints per matching unit
	EarnOrder EarnOn = "order" // MilliPoints once per order (with MinSubtotal)
	EarnEvent EarnOn = "event" // MilliPoints per custom event (newsletter sign-up, review)
)

// Period is a calendar period in the store's time zone, for earning caps.
type Period string

// Periods. Weeks start on Monday.
const (
	PeriodDay     Period = "day"
	PeriodWeek    Period = "week"
	PeriodMonth   Period = "month"
	PeriodQuarter Period = "quarter"
	PeriodYear    Period = "year"
)

// ExpiryKind says when earned points expire.
type ExpiryKind string

// Expiry kinds.
const (
	ExpiryNone     ExpiryKind = "none"     // the default: never
	ExpiryFixed    ExpiryKind = "fixed"    // all at At
	ExpiryRolling  ExpiryKind = "rolling"  // Months after they were earned
	ExpiryBucketed ExpiryKind = "bucketed" // end of the Bucket they were earned in, Years later
)

// PointsProgram is a loyalty program: how points are earned, what they are
// worth when burned as payment, and when they expire. Rates are integers:
// milli-points (1500 = 1.5 points) and basis points (15000 = ×1.5), so agent
// and hub compute the same points without floating point.
type PointsProgram struct {
	Earn []EarnRule `json:"earn,omitempty" cbor:"1,keyasint,omitempty"`
	// TierRates multiply every earning of a customer in that tier.
	TierRates []TierRate `json:"tier_rates,omitempty" cbor:"2,keyasint,omitempty"`
	// Multipliers are happy hours and days of the week. When several
	// match, the highest one applies (they do not compound).
	Multipliers []Multiplier `json:"multipliers,omitempty" cbor:"3,keyasint,omitempty"`
	// BurnPoints points pay BurnValue minor units; both 0 = no burning as
	// payment. Points burn in whole multiples of BurnPoints.
	BurnPoints int64  `json:"burn_points,omitempty" cbor:"4,keyasint,omitempty"`
	BurnValue  int64  `json:"burn_value,omitempty" cbor:"5,keyasint,omitempty"`
	Expiry     Expiry `json:"expiry,omitzero" cbor:"6,keyasint,omitzero"`
}

// EarnRule is one way to earn points. ID is stable: caps per period and the
// ledger refer to it.
type EarnRule struct {
	ID          string  `json:"id" cbor:"1,keyasint"`
	On          EarnOn  `json:"on" cbor:"2,keyasint"`
	Event       string  `json:"event,omitempty" cbor:"3,keyasint,omitempty"`
	Target      *Target `json:"target,omitempty" cbor:"4,keyasint,omitempty"`
	PerAmount   int64   `json:"per_amount,omitempty" cbor:"5,keyasint,omitempty"` // spend: minor units per step, e.g. 100 = per euro
	MilliPoints int64   `json:"milli_points" cbor:"6,keyasint"`
	MinSubtotal int64   `json:"min_subtotal,omitempty" cbor:"7,keyasint,omitempty"` // order: the subtotal it needs
	// MaxPoints caps this rule per order or event; 0 = none.
	MaxPoints int64 `json:"max_points,omitempty" cbor:"8,keyasint,omitempty"`
	// PeriodCap caps this rule per customer and Period; 0 = none. The caller
	// passes what was already earned in the current period (Request.Earned).
	PeriodCap int64  `json:"period_cap,omitempty" cbor:"9,keyasint,omitempty"`
	Period    Period `json:"period,omitempty" cbor:"10,keyasint,omitempty"`
}

// TierRate is the earn multiplier of a customer tier, in basis points
// (10000 = ×1, 15000 = ×1.5, 20000 = ×2).
type TierRate struct {
	Tier         string `json:"tier" cbor:"1,keyasint"`
	MultiplierBP int64  `json:"multiplier_bp" cbor:"2,keyasint"`
}

// Multiplier raises earnings on some days or hours (store time zone).
type Multiplier struct {
	Days         []string     `json:"days,omitempty" cbor:"1,keyasint,omitempty"`
	Hours        []HourWindow `json:"hours,omitempty" cbor:"2,keyasint,omitempty"`
	MultiplierBP int64        `json:"multiplier_bp" cbor:"3,keyasint"`
}

// Expiry says when points expire. Expiry times are the first instant the
// points are no longer valid, in the store's time zone.
type Expiry struct {
	Kind   ExpiryKind `json:"kind,omitempty" cbor:"1,keyasint,omitempty"`
	At     time.Time  `json:"at,omitzero" cbor:"2,keyasint,omitzero"`       // fixed
	Months int        `json:"months,omitempty" cbor:"3,keyasint,omitempty"` // rolling
	Bucket Period     `json:"bucket,omitempty" cbor:"4,keyasint,omitempty"` // bucketed: month, quarter or year
	Years  int        `json:"years,omitempty" cbor:"5,keyasint,omitempty"`  // bucketed: years after the bucket's end
}

// EarnKey names one earning rule of one campaign, for period caps.
type EarnKey struct {
	Campaign protocol.CampaignID `json:"campaign" cbor:"1,keyasint"`
	Rule     string              `json:"rule" cbor:"2,keyasint"`
}

// Earning is the points one rule gave, with the order lines they came from
// so a refund can take them back (see RefundPoints).
type Earning struct {
	Campaign  protocol.CampaignID `json:"campaign" cbor:"1,keyasint"`
	Rule      string              `json:"rule" cbor:"2,keyasint"`
	Points    int64               `json:"points" cbor:"3,keyasint"`
	Capped    bool                `json:"capped,omitempty" cbor:"4,keyasint,omitempty"` // a per-order or per-period cap cut it
	ExpiresAt time.Time           `json:"expires_at,omitzero" cbor:"5,keyasint,omitzero"`
	// Lines attributes Points to order lines (spend and item rules); order
	// and event rules have none and are taken back only by a full refund.
	Lines []LinePoints `json:"lines,omitempty" cbor:"6,keyasint,omitempty"`
}

// LinePoints is the share of an earning that came from one order line.
type LinePoints struct {
	Line   int   `json:"line" cbor:"1,keyasint"`
	Points int64 `json:"points" cbor:"2,keyasint"`
}
