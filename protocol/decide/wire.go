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
}
