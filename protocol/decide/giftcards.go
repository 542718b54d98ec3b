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
