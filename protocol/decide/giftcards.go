package decide

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
)

// CheckLoad is the one check of a gift card sale or top-up (issue 12),
// made by the till before it records one, by the hub's sale route, and by
// the hub's re-derivation of a till's fact: the campaign is a gift card
// campaign of these rules, the currency is the campaign's, and the amount
// is between 1 and protocol.MaxAmount minor units. Reason codes:
// campaign_unknown, not_a_gift_card, currency_mismatch, invalid_input
// (field "amount").
func CheckLoad(r *Rules, campaign protocol.CampaignID, currency protocol.Currency, amount int64) (*rules.Campaign, error) {
	if amount < 1 || amount > protocol.MaxAmount {
		return nil, protocol.FieldError("amount", "a gift card load must be between 1 and 2^50 minor units")
	}
	if r == nil {
		return nil, protocol.NewError(protocol.CodeCampaignUnknown)
	}
	c, ok := r.Campaign(campaign)
	if !ok {
		return nil, protocol.NewError(protocol.CodeCampaignUnknown)
	}
	if c.Reward.Kind != rules.RewardGiftCard {
		return nil, protocol.Errorf(protocol.CodeNotGiftCard, "campaign %s is not a gift card campaign", campaign)
	}
	if currency != "" && currency != c.Currency {
		return nil, protocol.Errorf(protocol.CodeCurrencyMismatch, "the gift card campaign is in %s, not %s", c.Currency, currency)
	}
	return c, nil
}

// GiftCardPattern is the shape of a gift card number a till or the hub
// mints when none is presented: 16 random characters (about 80 bits),
// which no one guesses, with a check character that catches a typo.
const GiftCardPattern = "GIFT-####-####-####-####"

// MintGiftCard returns a new gift card number (as printed) of
// GiftCardPattern.
func MintGiftCard(ctx context.Context) (string, error) {
	g, err := codes.New(codes.Options{Pattern: GiftCardPattern, Check: true})
	if err != nil {
		return "", err
	}
	out, err := g.Generate(ctx, 1, codes.ExistsFunc(func(string) bool { return false }))
	if err != nil {
		return "", err
	}
	return out[0], nil
}

// CheckCashOut is the one check of a cash-out of a card of campaign with
// balance left, at the till and the hub: the campaign is a gift card
// campaign that pays out remainders up to its CashOutMax, and the balance
// is above 0 and within it. Reason codes: campaign_unknown,
// not_a_gift_card, insufficient_balance, cashout_not_allowed.
func CheckCashOut(r *Rules, campaign protocol.CampaignID, balance int64) (*rules.Campaign, error) {
	c, err := CheckLoad(r, campaign, "", 1)
	if err != nil {
		return nil, err
	}
	switch {
	case balance <= 0:
		return nil, protocol.Errorf(protocol.CodeInsufficientFunds, "the gift card is empty")
	case c.Reward.CashOutMax == 0:
		return nil, protocol.Errorf(protocol.CodeCashOutRefused, "this gift card's remainder is not paid out in cash")
	case balance > c.Reward.CashOutMax:
		return nil, protocol.Errorf(protocol.CodeCashOutRefused, "a remainder of %d is above the cash-out limit of %d", balance, c.Reward.CashOutMax)
	}
	return c, nil
}
