package protocol

// Line is one line of an order. Prices are minor units of the order's
// currency.
type Line struct {
	SKU       string `json:"sku" cbor:"1,keyasint"`
	Category  string `json:"category,omitempty" cbor:"2,keyasint,omitempty"`
	Quantity  int64  `json:"quantity" cbor:"3,keyasint"`
	UnitPrice int64  `json:"unit_price" cbor:"4,keyasint"`
}

// Total is the line's price before discounts, and false on overflow.
func (l Line) Total() (int64, bool) { return MulMinor(l.UnitPrice, l.Quantity) }

// Order is the basket a reward is applied to. Shipping is a separate amount
// so that free-shipping rewards have something to take off.
type Order struct {
	ID       string   `json:"id,omitempty" cbor:"1,keyasint,omitempty"`
	Currency Currency `json:"currency" cbor:"2,keyasint"`
	Lines    []Line   `json:"lines" cbor:"3,keyasint"`
	Shipping int64    `json:"shipping,omitempty" cbor:"4,keyasint,omitempty"`
}

// Limits on orders accepted from the outside.
const (
	MaxOrderLines       = 500
	MaxQuantity         = 1_000_000
	MaxUnitPrice  int64 = 1_000_000_000_00 // a billion major units
	// MaxOrderTotal bounds lines plus shipping: 10^18 minor units, room for
	// any one line at the limits above yet a ninth of the int64 range, so
	// sums of a validated order's amounts cannot overflow.
	MaxOrderTotal int64 = 1_000_000_000_000_000_000
)

// Validate checks an order from the outside and returns a CodeInvalidInput
// error naming the field path.
func (o Order) Validate() error {
	if err := o.Currency.Validate(); err != nil {
		return FieldError("order.currency", "%s", err.(*Error).Message)
	}
	if len(o.ID) > MaxOrderIDLen {
		return FieldError("order.id", "the order id is longer than %d characters", MaxOrderIDLen)
	}
	if len(o.Lines) > MaxOrderLines {
		return FieldError("order.lines", "an order has at most %d lines", MaxOrderLines)
	}
	if o.Shipping < 0 || o.Shipping > MaxUnitPrice {
		return FieldError("order.shipping", "shipping must be between 0 and %d", MaxUnitPrice)
	}
	total := o.Shipping
	for i, l := range o.Lines {
		if l.SKU == "" {
			return FieldError(linePath(i, "sku"), "sku is required")
		}
		if l.Quantity <= 0 || l.Quantity > MaxQuantity {
			return FieldError(linePath(i, "quantity"), "quantity must be between 1 and %d", MaxQuantity)
		}
		if l.UnitPrice < 0 || l.UnitPrice > MaxUnitPrice {
			return FieldError(linePath(i, "unit_price"), "unit price must be between 0 and %d", MaxUnitPrice)
		}
		// Each line total fits (MaxQuantity*MaxUnitPrice is 1e17), but
		// MaxOrderLines of them need not: bound the sum, shipping included,
		// so that Subtotal and every discount computed on it cannot overflow.
		t, _ := l.Total()
		var ok bool
		if total, ok = AddMinor(total, t); !ok || total > MaxOrderTotal {
			return FieldError("order.lines", "the order total exceeds %d", MaxOrderTotal)
		}
	}
	return nil
}

func linePath(i int, f string) string { return "order.lines[" + itoa(i) + "]." + f }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// Subtotal is the sum of the line totals, without shipping. Validate bounds
// the inputs (MaxOrderTotal) so that it cannot overflow for a validated
// order; on an unvalidated order the result may be wrong.
func (o Order) Subtotal() int64 {
	var s int64
	for _, l := range o.Lines {
		t, _ := l.Total()
		s += t
	}
	return s
}

// Customer is what the rules may know of a customer: from a known customer
// record on the hub, or from a signed token's claims offline.
type Customer struct {
	ID         CustomerID        `json:"id,omitempty" cbor:"1,keyasint,omitempty"`
	Segment    string            `json:"segment,omitempty" cbor:"2,keyasint,omitempty"`
	Tier       string            `json:"tier,omitempty" cbor:"3,keyasint,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty" cbor:"4,keyasint,omitempty"`
	// Segments are the segments the hub computed the customer is in
	// (protocol/segment), besides the static Segment (additive, key 20:
	// an older peer ignores them). A campaign naming a segment admits the
	// customer when Segment or any of Segments is it.
	Segments []string `json:"segments,omitempty" cbor:"20,keyasint,omitempty"`
}

// InSegment says whether the customer is in seg: its static Segment or
// one of its computed Segments.
func (c *Customer) InSegment(seg string) bool {
	if c == nil || seg == "" {
		return false
	}
	if c.Segment == seg {
		return true
	}
	for _, s := range c.Segments {
		if s == seg {
			return true
		}
	}
	return false
}

// Validate checks a customer from the outside: its ID, when set, is an
// identifier (ValidateID), as every fact that names it must hold. It
// returns a CodeInvalidInput error on "customer.id".
func (c Customer) Validate() error {
	if c.ID == "" {
		return nil
	}
	if err := ValidateID("customer.id", string(c.ID)); err != nil {
		return FieldError("customer.id", "%s", err.(*Error).Message)
	}
	return nil
}

// RedemptionKind says what a journal fact is.
type RedemptionKind uint8

// Redemption kinds. Values travel on the wire; never renumber.
const (
	KindRedeem   RedemptionKind = 1 // a reward applied to an order
	KindRollback RedemptionKind = 2 // a void of an earlier redemption (Ref)
	KindEarn     RedemptionKind = 3 // loyalty points earned
	KindBurn     RedemptionKind = 4 // loyalty points spent
)

func (k RedemptionKind) String() string {
	switch k {
	case KindRedeem:
		return "redeem"
	case KindRollback:
		return "rollback"
	case KindEarn:
		return "earn"
	case KindBurn:
		return "burn"
	case KindIssue:
		return "giftcard_issue"
	case KindTopUp:
		return "giftcard_topup"
	case KindCashOut:
		return "giftcard_cashout"
	}
	return "unknown"
}

// Redemption is a fact recorded by an agent (offline or online) or by the
// hub: the cashier has already handed over the reward. The hub can account
// for it but never refuse it.
type Redemption struct {
	ID       RedemptionID   `json:"id" cbor:"1,keyasint"`
	Kind     RedemptionKind `json:"kind" cbor:"2,keyasint"`
	Tenant   TenantID       `json:"tenant" cbor:"3,keyasint"`
	Store    StoreID        `json:"store" cbor:"4,keyasint"`
	TxnID    string         `json:"txn_id" cbor:"5,keyasint"` // the POS's transaction id (idempotency key)
	Campaign CampaignID     `json:"campaign,omitempty" cbor:"6,keyasint,omitempty"`
	Code     CodeID         `json:"code,omitempty" cbor:"7,keyasint,omitempty"` // plain code or token serial
	Customer CustomerID     `json:"customer,omitempty" cbor:"8,keyasint,omitempty"`
	OrderID  string         `json:"order_id,omitempty" cbor:"9,keyasint,omitempty"`
	Currency Currency       `json:"currency,omitempty" cbor:"10,keyasint,omitempty"`
	Discount int64          `json:"discount,omitempty" cbor:"11,keyasint,omitempty"`         // minor units given off the order
	Spend    int64          `json:"spend,omitempty" cbor:"12,keyasint,omitempty"`            // gift card minor units spent
	Points   int64          `json:"points,omitempty" cbor:"13,keyasint,omitempty"`           // points earned (+) or burned (-)
	OrderTot int64          `json:"order_total,omitempty" cbor:"14,keyasint,omitempty"`      // order subtotal, minor units
	HLC      uint64         `json:"hlc" cbor:"15,keyasint"`                                  // hybrid logical clock of the agent
	Offline  bool           `json:"offline,omitempty" cbor:"16,keyasint,omitempty"`          // decided without the hub
	Ref      *RedemptionID  `json:"ref,omitempty" cbor:"17,keyasint,omitempty"`              // for rollbacks: the voided redemption
	Snapshot uint64         `json:"snapshot_version,omitempty" cbor:"18,keyasint,omitempty"` // rules version used
	// Sale is what the till decided on, so that the hub can re-run the
	// decision (protocol version 2); nil on the hub's own facts and on
	// rollbacks.
	Sale *Sale `json:"sale,omitempty" cbor:"19,keyasint,omitempty"`
	// Cap, on an earn of a period-capped earning rule, names the rule and
	// the period it counts in (earncap.go; additive, key 30).
	Cap *EarnCap `json:"cap,omitempty" cbor:"30,keyasint,omitempty"`
	// Expires is when the points an earn gives expire, as the rules
	// engine computed it (rules.Earning.ExpiresAt): Unix microseconds,
	// 0 = never. The ledger keeps the earn as a lot expiring then
	// (additive in protocol version 2: an older peer ignores it, and its
	// earns never expire).
	Expires int64 `json:"expires,omitempty" cbor:"20,keyasint,omitempty"`
	// Load, on a gift card sale (KindIssue) or top-up (KindTopUp), is the
	// minor units put on the card (Code, of the gift card campaign
	// Campaign, in Currency); see giftcards.go. Additive, key 23.
	Load int64 `json:"load,omitempty" cbor:"23,keyasint,omitempty"`
}

// Allowance is an agent's escrowed slice of one campaign's budgets: the agent
// may redeem offline up to these amounts without asking the hub. The hub
// guarantees that the sum of all granted allowances plus online use never
// exceeds the budget.
type Allowance struct {
	Tenant   TenantID   `json:"tenant" cbor:"1,keyasint"`
	Agent    AgentID    `json:"agent" cbor:"2,keyasint"`
	Campaign CampaignID `json:"campaign" cbor:"3,keyasint"`
	Grant    uint64     `json:"grant" cbor:"4,keyasint"`  // grant number, increasing per (agent, campaign)
	Count    int64      `json:"count" cbor:"5,keyasint"`  // redemptions allowed, -1 when the campaign has no count limit
	Amount   int64      `json:"amount" cbor:"6,keyasint"` // discount minor units allowed, -1 when unlimited
	Currency Currency   `json:"currency,omitempty" cbor:"7,keyasint,omitempty"`
	Expires  int64      `json:"expires,omitempty" cbor:"8,keyasint,omitempty"` // Unix microseconds; 0 = until returned
	// GrantedCount and GrantedAmount are everything the hub granted this
	// agent of the campaign, grants 1 to Grant (-1 for a dimension the
	// campaign does not limit; both 0: not given, a hub before them). A
	// grant's answer and the snapshot carry them, so a till that never
	// received an answer adds what it missed (agentdb.DB.Grant, Adopt).
	GrantedCount  int64 `json:"granted_count,omitempty" cbor:"9,keyasint,omitempty"`
	GrantedAmount int64 `json:"granted_amount,omitempty" cbor:"10,keyasint,omitempty"`
}
