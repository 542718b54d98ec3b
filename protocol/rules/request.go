package rules

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Limits on one request.
const (
	MaxRedeemables = 30 // redeemables on one order, as the leading engines allow
	MaxExclusive   = 5  // exclusive redeemables applied together
)

// RedeemableKind says what the customer handed over.
type RedeemableKind string

// Redeemable kinds.
const (
	RedeemCode     RedeemableKind = "code"      // a plain code ("SUMMER10"), resolved by the caller
	RedeemToken    RedeemableKind = "token"     // a signed token, verified by the caller
	RedeemGiftCard RedeemableKind = "gift_card" // a gift card of a gift_card campaign
	RedeemPoints   RedeemableKind = "points"    // points burned as payment in a points campaign
)

// Store is where the order happens. Location is resolved from TimeZone
// (IANA name) when nil; set it (NewStore) to save the lookup on each call.
type Store struct {
	ID       protocol.StoreID `json:"id" cbor:"1,keyasint"`
	Region   string           `json:"region,omitempty" cbor:"2,keyasint,omitempty"`
	TimeZone string           `json:"time_zone" cbor:"3,keyasint"`
	Location *time.Location   `json:"-" cbor:"-"`
}

// NewStore returns a Store with its time zone loaded. It returns a
// CodeInvalidInput error naming store.time_zone for an unknown zone.
func NewStore(id protocol.StoreID, region, timeZone string) (Store, error) {
	loc, err := loadLocation(timeZone)
	if err != nil {
		return Store{}, err
	}
	return Store{ID: id, Region: region, TimeZone: timeZone, Location: loc}, nil
}

// Redeemable is one thing the customer presents. The caller has already
// resolved it (code list lookup or token signature) to a campaign, and looked
// up what the engine cannot know: uses so far and balances.
type Redeemable struct {
	Kind     RedeemableKind      `json:"kind" cbor:"1,keyasint"`
	Code     protocol.CodeID     `json:"code,omitempty" cbor:"2,keyasint,omitempty"` // plain code, token serial or card number
	Campaign protocol.CampaignID `json:"campaign" cbor:"3,keyasint"`
	// Amount is the gift card spend or points burn asked for; 0 = as much
	// as the order can use.
	Amount int64 `json:"amount,omitempty" cbor:"4,keyasint,omitempty"`
	// Balance is the gift card's balance in minor units (gift_card).
	Balance int64 `json:"balance,omitempty" cbor:"5,keyasint,omitempty"`
	// Uses is how many times this code or card was used before.
	Uses int64 `json:"uses,omitempty" cbor:"6,keyasint,omitempty"`
	// MaxUses, from a token's claims, overrides the campaign's per_code
	// limit when not 0.
	MaxUses int64 `json:"max_uses,omitempty" cbor:"7,keyasint,omitempty"`
	// NotBefore and Expires narrow the campaign's dates for this code or
	// token (zero = the campaign's dates).
	NotBefore time.Time `json:"not_before,omitzero" cbor:"8,keyasint,omitzero"`
	Expires   time.Time `json:"expires,omitzero" cbor:"9,keyasint,omitzero"`
}

// Budget is what is left of a campaign's count and amount budgets for this
// caller: the hub's remaining budget, or the agent's allowance. -1 means
// unlimited, as in protocol.Allowance.
type Budget struct {
	Count  int64 `json:"count" cbor:"1,keyasint"`
	Amount int64 `json:"amount" cbor:"2,keyasint"`
}

// Request is everything one decision depends on. It is pure input: the
// caller looks up balances and counts; the engine does no I/O and reads no
// clock.
type Request struct {
	Tenant      protocol.TenantID  `json:"tenant" cbor:"1,keyasint"`
	Order       protocol.Order     `json:"order" cbor:"2,keyasint"`
	Customer    *protocol.Customer `json:"customer,omitempty" cbor:"3,keyasint,omitempty"`
	Store       Store              `json:"store" cbor:"4,keyasint"`
	Now         time.Time          `json:"now" cbor:"5,keyasint"`
	Redeemables []Redeemable       `json:"redeemables,omitempty" cbor:"6,keyasint,omitempty"`
	// Points is the customer's spendable (unexpired) points balance.
	Points int64 `json:"points,omitempty" cbor:"7,keyasint,omitempty"`
	// CustomerUses is how many times this customer redeemed each campaign.
	CustomerUses map[protocol.CampaignID]int64 `json:"customer_uses,omitempty" cbor:"8,keyasint,omitempty"`
	// Budgets is what is left of each limited campaign's budgets; a
	// campaign missing here is capped only by its own limits on this order.
	Budgets map[protocol.CampaignID]Budget `json:"budgets,omitempty" cbor:"9,keyasint,omitempty"`
	// Earned is what this customer already earned in the current period of
	// each capped earning rule (see PeriodStart).
	Earned map[EarnKey]int64 `json:"-" cbor:"-"`
	// NoEarn skips points earning (for example a quote before the customer
	// identified themselves).
	NoEarn bool `json:"no_earn,omitempty" cbor:"10,keyasint,omitempty"`
	// CustomerPeriodUses is how many times this customer redeemed each
	// campaign with a per_customer_period limit in its current period.
	CustomerPeriodUses map[protocol.CampaignID]int64 `json:"customer_period_uses,omitempty" cbor:"11,keyasint,omitempty"`
}

// Result is the decision on one redeemable (or one automatic campaign).
type Result struct {
	// Index is the redeemable's position in Request.Redeemables; -1 for an
	// automatic campaign.
	Index    int                 `json:"index" cbor:"1,keyasint"`
	Kind     RedeemableKind      `json:"kind,omitempty" cbor:"2,keyasint,omitempty"`
	Code     protocol.CodeID     `json:"code,omitempty" cbor:"3,keyasint,omitempty"`
	Campaign protocol.CampaignID `json:"campaign" cbor:"4,keyasint"`
	Applied  bool                `json:"applied" cbor:"5,keyasint"`
	// Reason says why it was not applied ("" when applied).
	Reason  protocol.Code `json:"reason,omitempty" cbor:"6,keyasint,omitempty"`
	Message string        `json:"message,omitempty" cbor:"7,keyasint,omitempty"`
	// Step is the 1-based position in the application order (0 when not
	// applied).
	Step int `json:"step,omitempty" cbor:"8,keyasint,omitempty"`
	// Discount is minor units off the lines; ShippingDiscount off shipping.
	Discount         int64 `json:"discount,omitempty" cbor:"9,keyasint,omitempty"`
	ShippingDiscount int64 `json:"shipping_discount,omitempty" cbor:"10,keyasint,omitempty"`
	// Spend is what a gift card or points burn pays, in minor units.
	Spend int64 `json:"spend,omitempty" cbor:"11,keyasint,omitempty"`
	// PointsBurned is points taken from the customer (catalog reward cost or
	// points paid).
	PointsBurned int64 `json:"points_burned,omitempty" cbor:"12,keyasint,omitempty"`
	// Lines are the discounted lines.
	Lines []LineDiscount `json:"lines,omitempty" cbor:"13,keyasint,omitempty"`
}

// LineDiscount is the part of a discount that landed on one order line.
type LineDiscount struct {
	Line     int   `json:"line" cbor:"1,keyasint"`
	Quantity int64 `json:"quantity,omitempty" cbor:"2,keyasint,omitempty"` // units rewarded (unit-level rewards)
	Discount int64 `json:"discount" cbor:"3,keyasint"`
}

// Decision is the engine's answer for one order. Amounts are minor units
// of Currency; none is ever negative.
type Decision struct {
	Currency protocol.Currency `json:"currency" cbor:"1,keyasint"`
	Subtotal int64             `json:"subtotal" cbor:"2,keyasint"` // lines before discounts
	Shipping int64             `json:"shipping,omitempty" cbor:"3,keyasint,omitempty"`
	// Discount is the total off the lines; ShippingDiscount off shipping.
	Discount         int64 `json:"discount" cbor:"4,keyasint"`
	ShippingDiscount int64 `json:"shipping_discount,omitempty" cbor:"5,keyasint,omitempty"`
	// Total is Subtotal + Shipping - Discount - ShippingDiscount.
	Total int64 `json:"total" cbor:"6,keyasint"`
	// Paid is what gift cards and points pay; Due = Total - Paid.
	Paid int64 `json:"paid,omitempty" cbor:"7,keyasint,omitempty"`
	Due  int64 `json:"due" cbor:"8,keyasint"`
	// LineTotals are the lines' amounts after discounts, by line.
	LineTotals []int64 `json:"line_totals,omitempty" cbor:"9,keyasint,omitempty"`
	// Results has one entry per request redeemable in request order, then
	// the automatic campaigns that applied.
	Results []Result `json:"results" cbor:"10,keyasint"`
	// PointsEarned is the sum of Earnings; PointsBurned of the results'.
	PointsEarned int64     `json:"points_earned,omitempty" cbor:"11,keyasint,omitempty"`
	PointsBurned int64     `json:"points_burned,omitempty" cbor:"12,keyasint,omitempty"`
	Earnings     []Earning `json:"earnings,omitempty" cbor:"13,keyasint,omitempty"`
	// Error is set when the request itself is refused (invalid order,
	// unknown time zone, too many redeemables); every result then carries
	// the same reason and nothing applies.
	Error *protocol.Error `json:"error,omitempty" cbor:"14,keyasint,omitempty"`
}
