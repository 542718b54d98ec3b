package protocol

// Sale is what a till decided a redemption on, carried with each of the
// sale's facts so that the hub can run the same decision again and flag a
// fact whose discount or points the rules do not give (guarantee 9). It
// holds only the decision's inputs that the hub cannot look up itself: the
// order lines, what was presented, the customer as the rules saw it, the
// moment, and the allowance left for each limited campaign. The order's
// currency and id travel in the Redemption.
//
// Lines may be compacted by the till (rules.Catalog.CompactOrder): a SKU or
// category that no campaign of the till's rules version names is replaced
// by a placeholder, which changes no decision and keeps a fact small.
type Sale struct {
	Lines     []Line      `json:"lines" cbor:"1,keyasint"`
	Shipping  int64       `json:"shipping,omitempty" cbor:"2,keyasint,omitempty"`
	Presented []Presented `json:"presented,omitempty" cbor:"3,keyasint,omitempty"`
	// Customer is the customer as the rules saw it: from the POS, or from
	// a token's claims when the POS named none.
	Customer *Customer `json:"customer,omitempty" cbor:"4,keyasint,omitempty"`
	// At is the moment of the decision, Unix milliseconds (the till's
	// clock).
	At int64 `json:"at" cbor:"5,keyasint"`
	// Budgets are the allowances left, per limited campaign the decision
	// looked at, when it was made.
	Budgets []SaleBudget `json:"budgets,omitempty" cbor:"6,keyasint,omitempty"`
	// Points is the customer's spendable points the decision knew: the
	// hub's figure when the till asked it online first, else 0 (a till
	// alone cannot know them). The hub re-derives a points burn with it.
	Points int64 `json:"points,omitempty" cbor:"7,keyasint,omitempty"`
	// Earned is what the till counted as already earned by the customer
	// in the current period of each capped earning rule (additive, key
	// 30): the hub re-derives the capped points with it.
	Earned []SaleEarned `json:"earned,omitempty" cbor:"30,keyasint,omitempty"`
}

// PresentedKind says what a customer handed over.
type PresentedKind uint8

// Presented kinds. Values travel on the wire; never renumber.
const (
	PresentedCode     PresentedKind = 1 // a plain code
	PresentedToken    PresentedKind = 2 // a signed token (Code is its serial)
	PresentedGiftCard PresentedKind = 3 // a gift card number
	PresentedPoints   PresentedKind = 4 // points burned as payment (Code is the points campaign)
)

// Presented is one code, token or gift card of a sale, in the order the
// rules saw them.
type Presented struct {
	Kind   PresentedKind `json:"kind" cbor:"1,keyasint"`
	Code   CodeID        `json:"code" cbor:"2,keyasint"`                       // code key, token serial or card number
	Amount int64         `json:"amount,omitempty" cbor:"3,keyasint,omitempty"` // gift card spend asked for; 0 = as much as the order can use
}

// SaleBudget is a limited campaign's allowance left at the till when it
// decided: -1 means unlimited, as in Allowance.
type SaleBudget struct {
	Campaign CampaignID `json:"campaign" cbor:"1,keyasint"`
	Count    int64      `json:"count" cbor:"2,keyasint"`
	Amount   int64      `json:"amount" cbor:"3,keyasint"`
}

// Limits on a sale from the outside.
const MaxPresented = 30 // as rules.MaxRedeemables

// Validate checks a sale from the outside and returns a CodeInvalidInput
// error naming the field path.
func (s *Sale) Validate(currency Currency) error {
	if len(s.Presented) > MaxPresented {
		return FieldError("sale.presented", "a sale has at most %d presented codes", MaxPresented)
	}
	for i, p := range s.Presented {
		if p.Kind < PresentedCode || p.Kind > PresentedPoints {
			return FieldError("sale.presented["+itoa(i)+"].kind", "unknown presented kind %d", p.Kind)
		}
		if p.Code == "" || len(p.Code) > MaxIDLen*2 {
			return FieldError("sale.presented["+itoa(i)+"].code", "code must be 1 to %d bytes", MaxIDLen*2)
		}
		if p.Amount < 0 {
			return FieldError("sale.presented["+itoa(i)+"].amount", "amount must not be negative")
		}
	}
	if s.Points < 0 {
		return FieldError("sale.points", "points must not be negative")
	}
	if err := validateSaleEarned(s.Earned); err != nil {
		return err
	}
	if len(s.Budgets) > MaxPresented*2 {
		return FieldError("sale.budgets", "a sale has at most %d budgets", MaxPresented*2)
	}
	if s.At <= 0 {
		return FieldError("sale.at", "the time of the sale is required")
	}
	return Order{Currency: currency, Lines: s.Lines, Shipping: s.Shipping}.Validate()
}
