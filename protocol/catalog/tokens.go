package catalog

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// TokenRequest asks for a signed reward token.
type TokenRequest struct {
	Campaign   protocol.CampaignID `json:"campaign"`
	Customer   protocol.CustomerID `json:"customer,omitempty"`
	Uses       uint32              `json:"uses,omitempty"`        // default 1
	Expires    time.Time           `json:"expires,omitzero"`      // default now + DefaultTokenTTL
	NotBefore  time.Time           `json:"not_before,omitzero"`   // default: at once
	Value      protocol.Money      `json:"value,omitzero"`        // a fixed value, e.g. a gift amount
	Store      protocol.StoreID    `json:"store,omitempty"`       // valid only in this store
	StoreGroup string              `json:"store_group,omitempty"` // valid only in this store group
}

// Token is an issued token as the catalog remembers it.
type Token struct {
	Serial    protocol.CodeID     `json:"serial"`
	Campaign  protocol.CampaignID `json:"campaign"`
	Customer  protocol.CustomerID `json:"customer,omitempty"`
	KID       protocol.KeyID      `json:"kid"`
	Uses      int64               `json:"uses"`
	Value     protocol.Money      `json:"value,omitzero"`
	Text      string              `json:"text"`
	IssuedAt  time.Time           `json:"issued_at"`
	Expires   time.Time           `json:"expires"`
	IssuedBy  string              `json:"issued_by"`
	RevokedAt time.Time           `json:"revoked_at,omitzero"`
	Version   uint64              `json:"version"`
}
