package wire

import (
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// The online channels' API (POST /v1/tenants/{t}/validate, /redeem,
// /earn; docs/api.md): hub/online decides, hub/api serves, the test
// harness and the web shop speak it.

// OnlineStore is where an online order happens.
type OnlineStore struct {
	ID       protocol.StoreID `json:"id"`
	Region   string           `json:"region,omitempty"`
	TimeZone string           `json:"time_zone"`
	Group    string           `json:"group,omitempty"`
}

// Presented is one thing the customer hands over: exactly one of Code (a
// plain code or gift card number), Token (a signed token text) or
// Campaign (points burned as payment in that points campaign).
type Presented struct {
	Code     string              `json:"code,omitempty"`
	Token    string              `json:"token,omitempty"`
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
	// Amount is the gift card spend or points burn asked for; 0 = as
	// much as the order can use.
	Amount int64 `json:"amount,omitempty"`
}

// OnlineRequest is an online channel's question.
type OnlineRequest struct {
	Store       OnlineStore         `json:"store"`
	Order       protocol.Order      `json:"order"`
	Customer    protocol.CustomerID `json:"customer,omitempty"`
	Redeemables []Presented         `json:"redeemables,omitempty"`
}

// OnlineResponse is the decision and, for redeem and earn, what the
// ledger recorded.
type OnlineResponse struct {
	Decision    rules.Decision        `json:"decision"`
	Redemptions []protocol.Redemption `json:"redemptions,omitempty"`
}
