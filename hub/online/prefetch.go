package online

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
)

// prefetch reads, in one ledger statement (ledger.Figures), the figures
// the decision will ask of in: the customer's points, the presented
// codes' uses and spending, and the per-customer counts and budgets of
// their campaigns and of the limited automatic ones. The Facts methods
// answer from them and read singly what was not foreseen (a token's
// serial, a campaign only the engine names). Before, a basket with a code
// and a customer made four or five ledger reads.
func (f *Facts) prefetch(ctx context.Context, in Request) error {
	var q ledger.FiguresQuery
	q.Customer = in.Customer
	seen := map[protocol.CampaignID]bool{}
	campaign := func(id protocol.CampaignID) {
		if seen[id] {
			return
		}
		seen[id] = true
		c, ok := f.comp.Rules.Campaign(id)
		if !ok {
			return
		}
		if q.Customer != "" && c.Limits.PerCustomer > 0 {
			q.Counts = append(q.Counts, id)
		}
		if f.comp.Rules.Limited(id) {
			q.Campaigns = append(q.Campaigns, id)
		}
	}
	for _, p := range in.Redeemables {
		switch {
		case p.Code != "":
			cd, err := f.cat.Code(ctx, f.tenant, p.Code)
			if err != nil {
				continue // the decision meets it again
			}
			q.Codes = append(q.Codes, cd.Key)
			if cp, ok := f.comp.Camps[cd.Campaign]; ok && cp.Rules.Reward.Kind == rules.RewardGiftCard {
				q.Cards = append(q.Cards, cd.Key)
			}
			campaign(cd.Campaign)
		case p.Campaign != "":
			campaign(p.Campaign)
		}
	}
	for _, id := range f.comp.Rules.AutoLimited() {
		campaign(id)
	}
	if q.Customer == "" && len(q.Codes) == 0 && len(q.Campaigns) == 0 {
		return nil
	}
	fig, err := f.led.Figures(ctx, f.tenant, q)
	if err != nil {
		return err
	}
	f.fig, f.figCustomer = &fig, q.Customer
	return nil
}
