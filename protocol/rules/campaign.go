package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
)

// SchemaVersion is the version of the campaign schema this package reads
// and writes. A campaign carries it in "schema"; a newer schema is refused
// with CodeUnsupportedVersion rather than half understood.
//
// History (newest last; never renumber):
//
//	1 (2026-11-23): first version.
const SchemaVersion = 1

// Status says whether a campaign may be redeemed at all. It is the kill
// switch: a stopped campaign refuses every redemption, whatever its dates.
type Status string

// Campaign statuses.
const (
	StatusDraft   Status = "draft"   // created, never started: refused as campaign_stopped
	StatusActive  Status = "active"  // redeemable within its own dates and rules
	StatusStopped Status = "stopped" // kill switch: refused as campaign_stopped
)

// Trigger says how a campaign reaches an order.
type Trigger string

// Triggers.
const (
	TriggerCode Trigger = "code" // only when a redeemable (code, token, card) names it; the default
	TriggerAuto Trigger = "auto" // applies to every eligible order by itself (automatic promotions, points programs)
)

// RewardKind is what a campaign gives.
type RewardKind string

// Reward kinds. See docs/rules.md for a JSON example of each.
const (
	RewardPercentOff    RewardKind = "percent_off"    // percent of the order or of matching items, optional cap
	RewardAmountOff     RewardKind = "amount_off"     // a fixed amount off the order or matching items
	RewardFixedPrice    RewardKind = "fixed_price"    // matching units cost Amount each
	RewardFreeItem      RewardKind = "free_item"      // Get units of the target free (or GetPercentBP off)
	RewardBuyXGetY      RewardKind = "buy_x_get_y"    // buy Buy, get Get at GetPercentBP off (BOGO, 3 for 2, second half price)
	RewardSpendTiers    RewardKind = "spend_tiers"    // spend X save Y, highest tier reached
	RewardQuantityTiers RewardKind = "quantity_tiers" // buy N or more matching units, highest tier reached
	RewardBundle        RewardKind = "bundle"         // a set of items for a fixed price
	RewardFreeShipping  RewardKind = "free_shipping"  // the order's shipping line, up to MaxDiscount
	RewardGiftCard      RewardKind = "gift_card"      // a payment from a balance held by the caller
	RewardPoints        RewardKind = "points"         // a loyalty program: earn rules, burn rate, expiry
)

// Pick says which matching units a unit-level reward lands on when the
// basket holds more than it rewards.
type Pick string

// Picks.
const (
	PickCheapest      Pick = "cheapest"       // the default: the lowest-priced matching units
	PickMostExpensive Pick = "most_expensive" // the highest-priced matching units
)

// StackMode is a campaign's stacking class (see docs/rules.md, Stacking).
type StackMode string

// Stacking modes.
const (
	StackNormal    StackMode = "normal"    // the default: combines with normal and joint redeemables
	StackExclusive StackMode = "exclusive" // excludes normal ones (unless allowed); combines with exclusive (up to MaxExclusive) and joint
	StackJoint     StackMode = "joint"     // combines with everything, exclusive ones included
)

// Base says what amount a discount is computed on when earlier discounts
// already touched the same items.
type Base string

// Bases.
const (
	BaseDiscounted Base = "discounted" // the default: the amount left after earlier discounts
	BaseInitial    Base = "initial"    // the price before any discount (still capped by what is left)
)

// Campaign is one promotion, gift card program or loyalty program: the
// unit marketers create and the hub ships to agents. It is data: JSON in the
// hub's API, CBOR (small integer keys) in the agents' snapshots, one schema.
// Times are whole seconds; amounts are minor units of Currency.
type Campaign struct {
	Schema      int                 `json:"schema" cbor:"1,keyasint"`
	ID          protocol.CampaignID `json:"id" cbor:"2,keyasint"`
	Tenant      protocol.TenantID   `json:"tenant" cbor:"3,keyasint"`
	Name        string              `json:"name,omitempty" cbor:"4,keyasint,omitempty"`
	Status      Status              `json:"status" cbor:"5,keyasint"`
	Trigger     Trigger             `json:"trigger,omitempty" cbor:"6,keyasint,omitempty"`
	Currency    protocol.Currency   `json:"currency" cbor:"7,keyasint"`
	StartsAt    time.Time           `json:"starts_at,omitzero" cbor:"8,keyasint,omitzero"` // inclusive; zero = no start
	EndsAt      time.Time           `json:"ends_at,omitzero" cbor:"9,keyasint,omitzero"`   // exclusive; zero = no end
	Reward      Reward              `json:"reward" cbor:"10,keyasint"`
	Eligibility Eligibility         `json:"eligibility,omitzero" cbor:"11,keyasint,omitzero"`
	Stacking    Stacking            `json:"stacking,omitzero" cbor:"12,keyasint,omitzero"`
	Limits      Limits              `json:"limits,omitzero" cbor:"13,keyasint,omitzero"`
	// PointsCost makes the campaign a catalog reward: redeeming it burns this
	// many points of the customer's balance (Request.Points).
	PointsCost int64 `json:"points_cost,omitempty" cbor:"14,keyasint,omitempty"`
	// Referral makes the campaign a referral program (protocol/referrals.go):
	// its codes are customers' referral codes, its reward the referee's,
	// and the ledger rewards the referrer. Additive, key 24.
	Referral *protocol.Referral `json:"referral,omitempty" cbor:"24,keyasint,omitempty"`
}

// Reward is what a campaign gives. Which fields apply depends on Kind; a
// field set for a kind that does not use it is refused by Validate, so a
// marketer's mistake never becomes a silent no-op.
type Reward struct {
	Kind RewardKind `json:"kind" cbor:"1,keyasint"`
	// PercentBP is the share off in basis points (1000 = 10%), 1..10000.
	PercentBP int64 `json:"percent_bp,omitempty" cbor:"2,keyasint,omitempty"`
	// Amount is minor units: the amount off (amount_off), the unit price
	// (fixed_price) or the bundle price (bundle).
	Amount int64 `json:"amount,omitempty" cbor:"3,keyasint,omitempty"`
	// MaxDiscount caps what one order gets from this reward; 0 = no cap.
	MaxDiscount int64 `json:"max_discount,omitempty" cbor:"4,keyasint,omitempty"`
	// Target selects the items the reward applies to (the "buy" items of
	// buy_x_get_y); nil means the whole order.
	Target *Target `json:"target,omitempty" cbor:"5,keyasint,omitempty"`
	// GetTarget selects the rewarded items of buy_x_get_y when they differ
	// from the bought ones ("buy a burger, get fries free").
	GetTarget *Target `json:"get_target,omitempty" cbor:"6,keyasint,omitempty"`
	Buy       int64   `json:"buy,omitempty" cbor:"7,keyasint,omitempty"` // buy_x_get_y: units to buy
	Get       int64   `json:"get,omitempty" cbor:"8,keyasint,omitempty"` // buy_x_get_y, free_item: units rewarded (free_item default 1)
	// GetPercentBP is the share off each rewarded unit; 0 means 10000 (free).
	// 5000 is "second at half price".
	GetPercentBP int64 `json:"get_percent_bp,omitempty" cbor:"9,keyasint,omitempty"`
	Pick         Pick  `json:"pick,omitempty" cbor:"10,keyasint,omitempty"`
	// MaxApplications caps how many times buy_x_get_y or bundle repeats on
	// one order; 0 = as often as the basket allows.
	MaxApplications int64 `json:"max_applications,omitempty" cbor:"11,keyasint,omitempty"`
	// MaxQuantity caps the units fixed_price applies to; 0 = all.
	MaxQuantity int64        `json:"max_quantity,omitempty" cbor:"12,keyasint,omitempty"`
	Tiers       []Tier       `json:"tiers,omitempty" cbor:"13,keyasint,omitempty"`
	Bundle      []BundleItem `json:"bundle,omitempty" cbor:"14,keyasint,omitempty"`
	// MultiUse lets a gift card be spent several times until its balance is
	// gone; a single-use card is used up by its first spend.
	MultiUse bool           `json:"multi_use,omitempty" cbor:"15,keyasint,omitempty"`
	Points   *PointsProgram `json:"points,omitempty" cbor:"16,keyasint,omitempty"`
	// PayExclude, on a gift card, is what it may not pay for
	// (giftcards.go; additive, key 40).
	PayExclude *PayExclude `json:"pay_exclude,omitempty" cbor:"40,keyasint,omitempty"`
	// CashOutMax, on a gift card, is the largest remainder (minor units)
	// paid out in cash on request, emptying the card; 0 = never
	// (giftcards.go; additive, key 41).
	CashOutMax int64 `json:"cash_out_max,omitempty" cbor:"41,keyasint,omitempty"`
}

// Target selects order lines. A line matches when SKUs and Categories are
// both empty or it is in one of them, and its SKU is not excluded.
type Target struct {
	SKUs        []string `json:"skus,omitempty" cbor:"1,keyasint,omitempty"`
	Categories  []string `json:"categories,omitempty" cbor:"2,keyasint,omitempty"`
	ExcludeSKUs []string `json:"exclude_skus,omitempty" cbor:"3,keyasint,omitempty"`
}

// Tier is one step of spend_tiers (Min is minor units of matching spend) or
// quantity_tiers (Min is matching units). The highest tier reached applies,
// with exactly one of PercentBP (off the matching amount) or Amount (off the
// matching amount for spend_tiers, off each matching unit for
// quantity_tiers).
type Tier struct {
	Min       int64 `json:"min" cbor:"1,keyasint"`
	PercentBP int64 `json:"percent_bp,omitempty" cbor:"2,keyasint,omitempty"`
	Amount    int64 `json:"amount,omitempty" cbor:"3,keyasint,omitempty"`
}

// BundleItem is one component of a bundle: Quantity units matching Target.
// A line counts for the first bundle item whose target it matches.
type BundleItem struct {
	Target   Target `json:"target" cbor:"1,keyasint"`
	Quantity int64  `json:"quantity" cbor:"2,keyasint"`
}

// Eligibility says which orders, customers, stores and moments a campaign
// accepts. Empty fields accept everything. Days and hours are read in the
// store's time zone.
type Eligibility struct {
	Stores   []protocol.StoreID `json:"stores,omitempty" cbor:"1,keyasint,omitempty"`
	Regions  []string           `json:"regions,omitempty" cbor:"2,keyasint,omitempty"`
	Segments []string           `json:"segments,omitempty" cbor:"3,keyasint,omitempty"`
	Tiers    []string           `json:"tiers,omitempty" cbor:"4,keyasint,omitempty"`
	// Attributes must all match the customer's attributes.
	Attributes []AttributeMatch `json:"attributes,omitempty" cbor:"5,keyasint,omitempty"`
	// CustomerRequired refuses anonymous orders even without other
	// customer conditions.
	CustomerRequired bool `json:"customer_required,omitempty" cbor:"6,keyasint,omitempty"`
	// MinSubtotal is the order's subtotal (lines, before discounts, without
	// shipping) it needs, in minor units.
	MinSubtotal int64 `json:"min_subtotal,omitempty" cbor:"7,keyasint,omitempty"`
	// Requires lists items the basket must hold.
	Requires []Requirement `json:"requires,omitempty" cbor:"8,keyasint,omitempty"`
	// Days are "mon".."sun"; with Hours, a day names the day a window starts.
	Days  []string     `json:"days,omitempty" cbor:"9,keyasint,omitempty"`
	Hours []HourWindow `json:"hours,omitempty" cbor:"10,keyasint,omitempty"`
}

// AttributeMatch requires the customer attribute Key to be one of Values.
type AttributeMatch struct {
	Key    string   `json:"key" cbor:"1,keyasint"`
	Values []string `json:"values" cbor:"2,keyasint"`
}

// Requirement asks for at least MinQuantity units matching Target (and, if
// set, MinAmount minor units of them).
type Requirement struct {
	Target      Target `json:"target" cbor:"1,keyasint"`
	MinQuantity int64  `json:"min_quantity,omitempty" cbor:"2,keyasint,omitempty"`
	MinAmount   int64  `json:"min_amount,omitempty" cbor:"3,keyasint,omitempty"`
}

// HourWindow is a local wall-clock window "HH:MM" to "HH:MM" (To
// exclusive, "24:00" allowed). To before From wraps past midnight and
// belongs to the day it starts.
type HourWindow struct {
	From string `json:"from" cbor:"1,keyasint"`
	To   string `json:"to" cbor:"2,keyasint"`
}

// Stacking says how a campaign combines with others on one order.
type Stacking struct {
	Category string    `json:"category,omitempty" cbor:"1,keyasint,omitempty"`
	Mode     StackMode `json:"mode,omitempty" cbor:"2,keyasint,omitempty"`
	// Allow, for an exclusive campaign, lists the categories of normal
	// campaigns it still combines with; for a normal one, if not empty, the
	// only categories it combines with (joint ones always combine).
	Allow []string `json:"allow,omitempty" cbor:"3,keyasint,omitempty"`
	// Forbid lists categories it never combines with, whatever their mode.
	Forbid []string `json:"forbid,omitempty" cbor:"4,keyasint,omitempty"`
	// Priority orders campaigns within one application phase: higher first.
	Priority int32 `json:"priority,omitempty" cbor:"5,keyasint,omitempty"`
	Base     Base  `json:"base,omitempty" cbor:"6,keyasint,omitempty"`
}

// Limits bound a campaign's use. Count and amount budgets are enforced by
// the caller's remaining budget (Request.Budgets: the hub's ledger or the
// agent's allowance); the engine also caps one order by what remains.
type Limits struct {
	MaxRedemptions int64 `json:"max_redemptions,omitempty" cbor:"1,keyasint,omitempty"` // in total
	MaxDiscount    int64 `json:"max_discount,omitempty" cbor:"2,keyasint,omitempty"`    // in total, minor units
	PerCustomer    int64 `json:"per_customer,omitempty" cbor:"3,keyasint,omitempty"`    // redemptions per customer
	PerCode        int64 `json:"per_code,omitempty" cbor:"4,keyasint,omitempty"`        // uses of one code or token
	// MaxOrderValue bounds the total order value (subtotals) of the
	// campaign's redemptions, minor units. It is not escrowed to tills:
	// the hub's ledger refuses an online redemption beyond it
	// (budget_exhausted) and flags a till's (order_value_exceeded).
	MaxOrderValue int64 `json:"max_order_value,omitempty" cbor:"5,keyasint,omitempty"`
	// PerCustomerPeriod bounds one customer's redemptions per calendar
	// CustomerPeriod (day, week, month, quarter or year, in the store's
	// time zone): the caller passes the customer's redemptions in the
	// current period (Request.CustomerPeriodUses).
	PerCustomerPeriod int64  `json:"per_customer_period,omitempty" cbor:"6,keyasint,omitempty"`
	CustomerPeriod    Period `json:"customer_period,omitempty" cbor:"7,keyasint,omitempty"`
}

// ErrUnsupportedSchema is returned for a campaign of a newer schema.
var ErrUnsupportedSchema = protocol.Errorf(protocol.CodeUnsupportedVersion, "campaign schema is newer than %d", SchemaVersion)

// MaxCampaignBytes bounds one campaign's encoded form.
const MaxCampaignBytes = 256 << 10

// ParseCampaignJSON decodes and validates a campaign from the hub's API.
// Unknown fields, trailing data and invalid values are refused with a
// CodeInvalidInput error naming the field.
func ParseCampaignJSON(data []byte) (Campaign, error) {
	var c Campaign
	if len(data) > MaxCampaignBytes {
		return Campaign{}, protocol.FieldError("", "campaign is larger than %d bytes", MaxCampaignBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Campaign{}, jsonError(err, data)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Campaign{}, protocol.FieldError("", "unexpected data after the campaign")
	}
	if err := c.Validate(); err != nil {
		return Campaign{}, err
	}
	return c, nil
}

func jsonError(err error, data []byte) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return protocol.FieldError(te.Field, "must be a JSON %s, not %s", te.Type.Kind(), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return protocol.FieldError("", "not valid JSON at byte %d: %v", se.Offset, se)
	}
	msg := err.Error()
	const unknown = "json: unknown field "
	if strings.HasPrefix(msg, unknown) {
		name := strings.Trim(msg[len(unknown):], `"`)
		path := name
		var v any
		if json.Unmarshal(data, &v) == nil {
			if p := unknownPath(v, reflect.TypeFor[Campaign](), ""); p != "" {
				path = p
			}
		}
		return protocol.FieldError(path, "unknown field %q", name)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return protocol.FieldError("", "time must be RFC 3339, like 2026-12-01T00:00:00Z: %v", pe)
	}
	return protocol.FieldError("", "not a valid campaign: %v", err)
}

// campaignDecMode bounds a campaign decoded from a snapshot.
var campaignDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   12,
		MaxArrayElements:  1 << 16,
		MaxMapPairs:       64,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("rules: cbor dec mode: %v", err))
	}
	return dm
}()

// MarshalCampaignCBOR encodes a campaign for a snapshot, canonically (the
// same campaign always gives the same bytes).
func MarshalCampaignCBOR(c Campaign) ([]byte, error) {
	return protocol.EncMode.Marshal(c)
}

// IsZero reports whether e sets no condition, so that "eligibility": {} and
// no eligibility at all encode alike (omitzero in JSON and CBOR).
func (e Eligibility) IsZero() bool {
	return len(e.Stores) == 0 && len(e.Regions) == 0 && len(e.Segments) == 0 && len(e.Tiers) == 0 &&
		len(e.Attributes) == 0 && !e.CustomerRequired && e.MinSubtotal == 0 && len(e.Requires) == 0 &&
		len(e.Days) == 0 && len(e.Hours) == 0
}

// IsZero reports whether s is the default stacking.
func (s Stacking) IsZero() bool {
	return s.Category == "" && s.Mode == "" && len(s.Allow) == 0 && len(s.Forbid) == 0 && s.Priority == 0 && s.Base == ""
}

// IsZero reports whether l sets no limit.
func (l Limits) IsZero() bool { return l == Limits{} }

// IsZero reports whether e is the default (never expire).
func (e Expiry) IsZero() bool {
	return e.Kind == "" && e.At.IsZero() && e.Months == 0 && e.Bucket == "" && e.Years == 0
}

// ParseCampaignCBOR decodes and validates a campaign from a snapshot.
// Unknown keys are refused, as in JSON.
func ParseCampaignCBOR(data []byte) (Campaign, error) {
	var c Campaign
	if len(data) > MaxCampaignBytes {
		return Campaign{}, protocol.FieldError("", "campaign is larger than %d bytes", MaxCampaignBytes)
	}
	if err := campaignDecMode.Unmarshal(data, &c); err != nil {
		return Campaign{}, protocol.FieldError("", "not a valid campaign: %v", err)
	}
	if err := c.Validate(); err != nil {
		return Campaign{}, err
	}
	return c, nil
}

var timeType = reflect.TypeFor[time.Time]()

// unknownPath finds the path of the first field (in key order) of the
// decoded JSON value v that the Go type t does not have, so that a typo deep
// inside a campaign is reported where it is ("eligibility.hours[0].form").
// encoding/json names only the field, not its path. Keys match the JSON
// tags case-insensitively, as encoding/json does.
func unknownPath(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok || t == timeType {
			return ""
		}
		fields := make(map[string]reflect.Type, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[strings.ToLower(name)] = f.Type
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[strings.ToLower(k)]
			if !ok {
				return p
			}
			if found := unknownPath(m[k], ft, p); found != "" {
				return found
			}
		}
	case reflect.Slice, reflect.Array:
		a, ok := v.([]any)
		if !ok {
			return ""
		}
		for i, e := range a {
			if found := unknownPath(e, t.Elem(), idx(path, i)); found != "" {
				return found
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if found := unknownPath(m[k], t.Elem(), path+"."+k); found != "" {
				return found
			}
		}
	}
	return ""
}
