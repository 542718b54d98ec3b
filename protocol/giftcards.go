package protocol

import "net/http"

// Gift card life (issue 12, item 8): a gift card is sold (KindIssue) and
// topped up (KindTopUp) at a till or online, each a fact like a
// redemption: numbered, queued in the till's outbox, applied by the hub
// once by (agent, seq). Its Load is what the customer paid onto the card.
//
// A sold card's code is new to the hub: the hub adds it to the catalog
// (the gift card campaign, the Load as its balance) when the fact
// arrives, so the card is then known at every till (snapshot) and online.
// A top-up raises the card's balance by its Load (the ledger's loaded
// figure, ledger_013_giftcards).
//
// Kinds 5 to 7 are left to other work of the same round; never renumber.
const (
	KindIssue RedemptionKind = 8 // a gift card sold: Code created with Load as its balance
	KindTopUp RedemptionKind = 9 // a gift card topped up: Load added to Code's balance
	// KindCashOut pays a card's small remainder out in cash (Spend),
	// where its campaign allows it (rules.Reward.CashOutMax): the card
	// is then empty.
	KindCashOut RedemptionKind = 10
)

// Loads reports whether k puts value on a gift card (issue, top-up).
func (k RedemptionKind) Loads() bool { return k == KindIssue || k == KindTopUp }

// validateCashOut checks a cash-out: a code, a campaign, a currency and
// a Spend between 1 and MaxAmount, nothing else.
func (r Redemption) validateCashOut() error {
	switch {
	case r.Kind != KindCashOut:
		return nil
	case r.Spend < 1:
		return FieldError("spend", "a cash-out pays out between 1 and 2^50 minor units")
	case r.Code == "":
		return FieldError("code", "a cash-out names the card")
	case r.Campaign == "":
		return FieldError("campaign", "a cash-out names the gift card campaign")
	case r.Currency == "":
		return FieldError("currency", "a cash-out names its currency")
	case r.Discount != 0 || r.Points != 0 || r.Ref != nil || r.Sale != nil:
		return FieldError("kind", "a cash-out carries only what it pays out")
	}
	return nil
}

// validateLoad checks what a gift card sale or top-up must carry: a code,
// a campaign, a currency and a Load between 1 and MaxAmount; Load on any
// other fact is refused. invalid_input with the field.
func (r Redemption) validateLoad() error {
	if !r.Kind.Loads() {
		if r.Load != 0 {
			return FieldError("load", "only a gift card sale or top-up loads a card")
		}
		return nil
	}
	switch {
	case r.Load < 1 || r.Load > MaxAmount:
		return FieldError("load", "a gift card load must be between 1 and 2^50 minor units")
	case r.Code == "":
		return FieldError("code", "a gift card sale or top-up names the card")
	case r.Campaign == "":
		return FieldError("campaign", "a gift card sale or top-up names the gift card campaign")
	case r.Currency == "":
		return FieldError("currency", "a gift card sale or top-up names its currency")
	case r.Discount != 0 || r.Spend != 0 || r.Points != 0 || r.Ref != nil || r.Sale != nil:
		return FieldError("kind", "a gift card sale or top-up carries only its load")
	}
	return nil
}

// Reason codes of gift card sales and top-ups.
const (
	// CodeNotGiftCard: the campaign or code named is not a gift card.
	CodeNotGiftCard Code = "not_a_gift_card"
	// CodeGiftCardSold: a sale names a code that is already a card.
	CodeGiftCardSold Code = "giftcard_already_sold"
	// CodeGiftCardRestricted: what is left to pay is all excluded from
	// what the gift card pays for (rules.PayExclude).
	CodeGiftCardRestricted Code = "giftcard_restricted"
	// CodeCashOutRefused: the card's campaign does not pay out its
	// remainder, or the remainder is above its cash-out limit.
	CodeCashOutRefused Code = "cashout_not_allowed"
)

func init() {
	codes[CodeNotGiftCard] = codeInfo{http.StatusUnprocessableEntity, "This is not a gift card."}
	codes[CodeGiftCardSold] = codeInfo{http.StatusConflict, "This gift card has already been sold."}
	codes[CodeCashOutRefused] = codeInfo{http.StatusUnprocessableEntity, "This gift card's balance cannot be paid out in cash."}
	codes[CodeGiftCardRestricted] = codeInfo{http.StatusUnprocessableEntity, "This gift card cannot pay for these items."}
}
