package catalog

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// ReferralCode is a customer's referral code of one referral campaign
// (protocol/referrals.go; store/catalog makes it once per customer).
type ReferralCode struct {
	Customer  protocol.CustomerID `json:"customer"`
	Campaign  protocol.CampaignID `json:"campaign"`
	Code      string              `json:"code"` // printed form
	CreatedAt time.Time           `json:"created_at"`
	// Created is set when this call made the code (HTTP 201 rather than 200).
	Created bool `json:"-"`
}
