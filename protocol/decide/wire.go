package decide

import (
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// PathAuthorize is the hub's route where a till, online, asks what only
// the hub knows before it decides (online first): authenticated as the
// till (its agent secret), idempotent on (agent, txn_id).
const PathAuthorize = "/v1/agent/authorize"

// AuthorizeInput is one thing presented at the till, as scanned.
type AuthorizeInput struct {
	Code string `json:"code,omitempty"`
	// Campaign is a points burn as payment in this points campaign.
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
	Amount   int64               `json:"amount,omitempty"`
}

// AuthorizeRequest is a till's online-first question. The hub decides
// with the till's store (from its registration, not the request) and its
// own figures. Hold asks the hub to hold what the decision uses (a
// single-use code's use, a gift card's spend, a per-customer use) for the
// till's (agent, TxnID) until the till's fact reaches the ledger: a
// redeem sets it, a validate does not.
type AuthorizeRequest struct {
	TxnID       string             `json:"txn_id,omitempty"`
	Order       protocol.Order     `json:"order"`
	Customer    *protocol.Customer `json:"customer,omitempty"`
	Redeemables []AuthorizeInput   `json:"redeemables,omitempty"`
	Hold        bool               `json:"hold,omitempty"`
	// Unknown are the indexes of Redeemables the till's snapshot does not
	// resolve (code_unknown there): the hub answers the record of each it
	// knows and applies (AuthorizeResponse.Codes). Additive: an older till
	// sends none, an older hub ignores it.
	Unknown []int `json:"unknown,omitempty"`
}

// HubCode is a plain code or gift card as the hub knows it (Code), sent
// to a till whose snapshot does not carry it yet (a card sold at another
// till, a code generated or imported, a referral code made since the
// till's last snapshot): the till resolves it with this record, decides
// with its own pipeline and records its fact as usual, provided its
// snapshot has the code's campaign (fresh.go in agent).
type HubCode struct {
	// Index is the presented thing's index (AuthorizeRequest.Unknown).
	Index    int                 `json:"index"`
	Key      protocol.CodeID     `json:"key"`
	Campaign protocol.CampaignID `json:"campaign"`
	MaxUses  int64               `json:"max_uses,omitempty"`
	GiftCard bool                `json:"gift_card,omitempty"`
	// Balance is a gift card's balance loaded, top-ups included.
	Balance int64              `json:"balance,omitempty"`
	Stores  []protocol.StoreID `json:"stores,omitempty"`
	Group   string             `json:"group,omitempty"`
	Revoked bool               `json:"revoked,omitempty"`
}

// CodeOf is the pipeline's record of c.
func (c HubCode) CodeOf() Code {
	return Code{Key: c.Key, Campaign: c.Campaign, MaxUses: c.MaxUses, GiftCard: c.GiftCard, Balance: c.Balance,
		Stores: c.Stores, Group: c.Group, Revoked: c.Revoked}
}

// HubCodeOf is the wire record of c, presented at index i.
func HubCodeOf(i int, c Code) HubCode {
	return HubCode{Index: i, Key: c.Key, Campaign: c.Campaign, MaxUses: c.MaxUses, GiftCard: c.GiftCard, Balance: c.Balance,
		Stores: c.Stores, Group: c.Group, Revoked: c.Revoked}
}

// Known is the hub's figure of one presented thing's uses and spending,
// net of other holds.
type Known struct {
	Uses  int64 `json:"uses,omitempty"`
	Spent int64 `json:"spent,omitempty"`
}

// AuthorizeResponse is what the hub knows and decided. The till decides
// again with its own pipeline over Known, CustomerUses and Points (so
// that its fact re-derives with its snapshot's rules), and refuses what
// the hub refused (Decision).
type AuthorizeResponse struct {
	// Ref is the hub's reference of the decision ("agent/txn"), kept in
	// the till's receipt.
	Ref      string         `json:"ref,omitempty"`
	Decision rules.Decision `json:"decision"`
	// Known is by presented index (Decision.Results[i].Index).
	Known        []Known                       `json:"known"`
	CustomerUses map[protocol.CampaignID]int64 `json:"customer_uses,omitempty"`
	Points       int64                         `json:"points,omitempty"`
	// Held reports whether the hub holds what the decision uses.
	Held bool `json:"held,omitempty"`
	// Reflected says which of the asking till's own facts Known counts
	// (as snapshot.Snapshot.Reflected, read before Known; Known leaves
	// out the holds of the till's other transactions, which are its own
	// facts): the till adds its facts outside it, exactly
	// (agentdb.CodeFigure). Nil from a hub before it: the till then takes
	// the larger of Known and its own figure.
	Reflected *snapshot.Reflected `json:"reflected,omitempty"`
	// Position is the hub's code-use position read after Known: a
	// snapshot past it (snapshot.Snapshot.Uses) supersedes Known, which
	// the till keeps until then.
	Position uint64 `json:"position,omitempty"`
	// Earned is what the customer earned in each period-capped earning
	// rule's current period, per the ledger and other tills' holds (less
	// the asking till's own holds, as Known): the till adds its own facts
	// outside Reflected. Additive; nil from a hub before period caps.
	Earned []PeriodFigure `json:"earned,omitempty"`
	// Codes are the records of the codes the till named Unknown that the
	// hub knows and applied, by presented index. Additive: nil from an
	// older hub (the till then refuses code_unknown, as before).
	Codes []HubCode `json:"codes,omitempty"`
}
