package ledger

import "github.com/punchcard/punchcard/protocol"

// FiguresQuery names the ledger figures one online decision needs: a
// customer's points and per-campaign counts, codes' uses and gift card
// spending, campaigns' balances.
type FiguresQuery struct {
	Customer  protocol.CustomerID   // "" = none
	Codes     []protocol.CodeID     // uses
	Cards     []protocol.CodeID     // gift cards: spending
	Counts    []protocol.CampaignID // the customer's count of each
	Campaigns []protocol.CampaignID // balances
}

// Figures are the answers to a FiguresQuery, as one statement read them.
type Figures struct {
	Points    int64
	Uses      map[protocol.CodeID]int64
	Spent     map[protocol.CodeID]int64
	Counts    map[protocol.CampaignID]int64
	Campaigns map[protocol.CampaignID]CampaignBalance
}
