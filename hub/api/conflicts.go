package api

import (
	"time"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
)

// ledgerConflict is a ledger conflict as the API shows it.
type ledgerConflict struct {
	ID         int64                  `json:"id"`
	Kind       manage.ConflictKind    `json:"kind"`
	Campaign   protocol.CampaignID    `json:"campaign,omitempty"`
	Code       protocol.CodeID        `json:"code,omitempty"`
	Customer   protocol.CustomerID    `json:"customer,omitempty"`
	Redemption protocol.RedemptionID  `json:"redemption"`
	Other      *protocol.RedemptionID `json:"other,omitempty"`
	Detail     string                 `json:"detail,omitempty"`
	At         time.Time              `json:"at"`
}

func conflictsOut(cs []manage.Conflict) []ledgerConflict {
	out := make([]ledgerConflict, len(cs))
	for i, c := range cs {
		out[i] = ledgerConflict{c.ID, c.Kind, c.Campaign, c.Code, c.Customer, c.Redemption, c.Other, c.Detail, c.At}
	}
	return out
}
